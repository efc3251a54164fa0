// Package quicinitial reads the client's side of QUIC's Initial packets
// (RFC 9000 §17.2.2, RFC 9001 §5; QUIC v1 and v2, RFC 9369): the Initial
// secrets derived from the Destination Connection ID, header protection,
// packet decryption, the frames an Initial may carry and the CRYPTO stream
// that holds the ClientHello.
//
// It is shared machinery: lab/observe reads Initials seen on the wire with
// it, and the client reads its own first Initial to learn the random of
// every ClientHello it sends (client.Options.OnClientHello). Everything it
// parses is untrusted: bad input gives an error wrapping ErrPacket or
// ErrGaveUp, never a panic, and the memory a Hello keeps is bounded.
package quicinitial
