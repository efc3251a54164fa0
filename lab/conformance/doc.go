// Package conformance is echlab's client conformance suite (issue 17): a
// catalogue of misbehaving DNS records and ECH servers, each with the
// client behaviour RFC 9849 / RFC 9848 require of it, and a runner that
// serves every case on loopback, runs a client against it and grades the
// result.
//
// The server side lives in server_variants.go and server_relay.go: each
// ServerVariant is a real server (crypto/tls, or echlab's server package)
// or a byte-level relay in front of one that edits the server's first
// flight on the wire.
package conformance
