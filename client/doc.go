// Package client is echlab's ECH client: it finds a server's ECHConfigList
// in DNS, connects with Encrypted Client Hello (RFC 9849) over TCP/TLS
// (HTTP/1.1 or HTTP/2, by ALPN) or QUIC (HTTP/3), fetches a URL, and
// returns a Result record of everything it saw and timed.
//
// Discovery (discover.go) asks the HTTPS record of the origin through an
// Exchanger — any of the resolver package's stub clients (udp, tcp, tls,
// https, h3, quic) — at _PORT._https.NAME for ports other than 443
// (RFC 9460 §2.3), follows AliasMode records (at most MaxAliasChain), takes
// the ServiceMode record of lowest priority among those whose "mandatory"
// keys it implements (RFC 9460 §8: others are ignored), and looks up the target's
// A/AAAA through the same resolver (the address hints when there are none).
// The system resolver is never used. A config list may also be given
// (Options.ConfigList, LoadConfigList).
//
// The TLS work is crypto/tls's: EncryptedClientHelloConfigList to offer
// ECH, ConnectionState.ECHAccepted to see the outcome, and
// *tls.ECHRejectionError on rejection, which crypto/tls returns only after
// it verified the outer handshake's certificate for the config's public
// name. The client then retries once with the RetryConfigList (retry.go);
// a second rejection is final. PolicyFailClosed (the default) fails when ECH
// cannot be used; PolicyFallback connects again with the true name in the
// clear and says so in the Result (ECH "fallback", FallbackReason).
//
// ModeBaseline never offers ECH. ModeGREASE sends a GREASE ECH extension:
// Go 1.26's crypto/tls cannot, so grease.go adds one to crypto/tls's own
// ClientHello with the ech package's codec, writes it on a raw socket and
// reads only the server's first message (the handshake is not completed).
//
// Every failure is an *Error with a Class (dns, connect, tls-handshake,
// invalid-certificate, ech-rejected, timeout, http, config), and the
// sentinel errors of errors.go work with errors.Is.
package client
