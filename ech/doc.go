// Package ech implements the byte-level parts of TLS Encrypted Client Hello
// (RFC 9849) that the lab needs to see and to control: the ECHConfig and
// ECHConfigList codec, HPKE key generation and key sets (with
// github.com/cloudflare/circl), the ECH PEM file format (RFC 9934),
// ClientHello and ServerHello dissection, sealing and opening of the inner
// ClientHello, acceptance confirmation and GREASE.
//
// The package holds no network code: it works on bytes, so that servers,
// clients and the passive observer of package lab share one implementation.
package ech
