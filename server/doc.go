// Package server is echlab's ECH-terminating HTTPS server and its split-mode
// relay.
//
// Shared mode (Start) is one process that holds the ECH keys and the
// certificates of every name it serves: crypto/tls decrypts the
// ClientHelloInner, and the site answers over HTTP/1.1, HTTP/2 and, with
// quic-go, HTTP/3. Every connection is dissected (the bytes the client sent
// are recorded until the handshake is done) and logged as a ConnRecord JSON
// line, and the pages /, /cdn-cgi/trace and /api/conn tell the client what
// the server saw: outer and inner SNI, ECH status, config id, HPKE suite,
// HelloRetryRequest, ALPN, version and cipher.
//
// Split mode (StartSplit) is a client-facing relay that never sees
// plaintext: it reads the ClientHelloOuter, opens it with package ech,
// routes by the inner SNI (Routes), forwards the ClientHelloInner to a
// backend (a crypto/tls server adds the acceptance confirmation itself) and
// then copies bytes both ways. ClientHellos it cannot decrypt go to an
// in-process server for the public name that sends retry configs, and
// ClientHellos without ECH are passed through by their plain SNI.
//
// Baseline mode (StartBaseline) serves the same site without ECH keys, so
// the lab can compare. Rotator rotates the key set on a schedule while
// the old keys stay accepted for a grace period.
package server
