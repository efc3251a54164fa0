// Package ech implements the byte-level parts of TLS Encrypted Client Hello
// (RFC 9849) that the lab needs to see and to control: the ECHConfig and
// ECHConfigList codec, HPKE key generation and key sets (with
// github.com/cloudflare/circl), the ECH PEM file format (RFC 9934),
// ClientHello and ServerHello dissection, sealing and opening of the inner
// ClientHello, acceptance confirmation and GREASE.
//
// # Files by concern
//
//   - ECH configs: config.go, config_lenient.go, encode.go, suites.go,
//     pem.go (RFC 9934 files).
//   - Keys: keys.go, keycache.go (decoded HPKE keys), keyset*.go (a
//     rotating KeySet in a folder, read on every handshake through its
//     OnRead hook).
//   - ClientHello and ServerHello bytes: clienthello.go, extensions.go,
//     serverhello.go.
//   - Sealing and opening: seal.go, padding.go, open.go, secret.go (a
//     keylog's ECH_SECRET), confirm.go (acceptance confirmation and
//     ExpandLabel, RFC 8446's HKDF-Expand-Label), grease.go.
//
// # Legacy ESNI
//
// The esni*.go files implement ECH's retired predecessor, Encrypted SNI
// (draft-ietf-tls-esni-02 and -03), beside it, so that the lab can show
// what each one hides: ESNIKeys records and their DNS values (esni.go,
// esni_dns.go), key generation and PEM files (esni_keys.go), the
// encrypted_server_name extension sealed into a ClientHello (esni_crypt.go,
// esni_hello.go) and opened by a key holder (esni_open.go), and
// ObserveESNI, the passive observer's view. ESNI names are prefixed with
// ESNI (ESNIKeys, SealESNI, OpenESNI...). No maintained TLS library
// completes an ESNI handshake, so the lab works with ESNI at the level of
// keys, DNS values and ClientHello bytes.
//
// The package holds no network code: it works on bytes, so that servers,
// clients and the passive observer (package lab/observe) share one
// implementation.
package ech
