// Package adversary is the lab's on-path censor: a column of policies that
// an Adversary applies to what the lab's relays see (it implements
// capture.Filter), so that a run can show, client by client, what each
// kind of ECH blocking deployed in the wild does to it: fail closed, fall
// back to a name in the clear, or carry on with ECH.
//
// A column is written "KIND [ARG…]", policies joined by "+"; a grid is
// columns joined by "," (Parse, ParseGrid; "none" is the control column,
// "all" or "censor" is DefaultGrid). The kinds:
//
//   - block-sni NAME [drop|rst]: a TLS ClientHello whose visible SNI is
//     NAME (or under *.suffix) is dropped (the connection held open, a
//     black hole) or reset. The classic SNI filter of national firewalls.
//   - block-ech [drop|rst]: any ClientHello carrying an outer
//     encrypted_client_hello extension (0xfe0d), real or GREASE. This is
//     how encrypted SNI was handled in China in 2020: every ClientHello
//     with the ESNI extension was dropped, whatever it hid.
//   - block-ech-public NAME [drop|rst]: the ECH extension together with
//     the visible SNI NAME, the ECH public name. This reproduces the
//     blocking reported in Russia in November 2024, aimed at Cloudflare's
//     cloudflare-ech.com public name with the ECH extension.
//   - block-ech-size [SIZES] [drop|rst]: a censor that tries to tell real
//     ECH from GREASE by the payload length: lengths in SIZES (default
//     GreaseSizes, BoringSSL's GREASE lengths) pass, every other ECH
//     ClientHello is blocked. Clients whose GREASE has other lengths are
//     its collateral damage; the decision log has every payload length.
//   - strip-ech: Do53 answers lose the ech SvcParam of every HTTPS/SVCB
//     record, as a resolver or middlebox that strips or rewrites HTTPS
//     records does; the client no longer learns the ECHConfigList.
//   - drop-https-rr: Do53 answers lose their HTTPS/SVCB records (NODATA
//     when nothing remains), as networks that filter the new record type.
//   - poison NAME ADDR: Do53 answers about NAME carry ADDR (A for an IPv4
//     ADDR, AAAA for IPv6; the other family removed; injected when the
//     answer had none), the DNS injection of many national firewalls.
//   - block-doh [ADDR|IP:PORT|NAME] [drop|rst]: encrypted DNS cut off so
//     that clients fall back to Do53, where the DNS policies act: by
//     default every connection to the lab's DoH relay (TCP) and DoH3 relay
//     (UDP) is reset; with an address, TCP connections and UDP datagrams
//     to it (relay or backend address, any port unless given); with a
//     name, ClientHellos with that SNI (over TCP and QUIC).
//   - drop-udp [PORT]: UDP datagrams are discarded both ways, by default
//     those of the lab's HTTPS services (relays whose role is https/…,
//     wherever they listen), so HTTP/3 fails and clients fall back to TCP;
//     with another PORT, UDP whose relay or backend port is PORT.
//   - rst-after-hello: a ClientHello carrying ECH is forwarded, and the
//     client is reset when the server's first reply arrives, as censors
//     that let the handshake start and then tear it down.
//
// The ClientHello policies (block-sni, block-ech, block-ech-public,
// block-ech-size, rst-after-hello, block-doh NAME) read TLS over TCP and
// QUIC alike. On the relays of HTTP/3 (role https/…), DoH3 and DoQ the
// adversary follows each client flow (client and relay address) through
// its Initial packets, whose keys any on-path observer derives from the
// client's Destination Connection ID (RFC 9001 §5.2), until the
// ClientHello is whole (observe.QUICHello; a post-quantum key share makes
// it span two Initials), and judges the flow once. QUIC has no RST a
// middlebox can simply forge, so drop and rst both black-hole a blocked
// QUIC flow: that datagram and every later one of the flow, both ways, are
// dropped; rst-after-hello lets the ClientHello through and drops every
// datagram of the server. A flow is forgotten after 60 s without a
// datagram (the table holds at most 4096; a new flow beyond that evicts
// the one idle longest); a decided flow costs one map lookup a datagram.
// A second QUIC connection from the same client address within that time
// is judged as the first.
//
// In a column the first policy that matches a connection decides it;
// every DNS policy rewrites the answers it applies to, in column order.
// drop-udp and block-doh without a name act on each datagram before any
// QUIC Initial is read.
// Bytes the adversary cannot parse pass (a malformed ClientHello is read
// leniently first, so that it cannot slip past a block-* policy); no
// input makes it panic (FuzzAdversary).
//
// Each decision is logged (Decisions: one per TCP connection, per QUIC
// flow whose ClientHello was read, per Do53 message, per rewrite and per
// datagram discarded by drop-udp or block-doh; datagrams passed untouched
// are not logged, nor a blocked QUIC flow's later datagrams), each
// policy's matches counted (Counts), and every name seen in the clear
// kept (Seen: ClientHello SNIs, over TCP and QUIC, and Do53 query
// names).
package adversary
