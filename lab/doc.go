// Package lab is the observer side of echlab: it captures the lab's traffic
// and reads it back the way an on-path observer would.
//
// Capture comes in two kinds. StartLiveCapture reads real packets from a
// Linux packet socket (root or CAP_NET_RAW) and writes them as pcapng.
// Without that privilege, a Recorder wraps the lab's net.Conn and
// net.PacketConn values, notes every byte with the time it was seen, and
// writes a pcapng with synthesized Ethernet/IP/TCP/UDP framing (handshakes,
// sequence numbers, MSS-sized segments, FIN) that Wireshark and tshark open
// like a real capture. Synthesized captures say so in their section header
// comment, and Compare reports it.
//
// Compare reads any pcap or pcapng (the lab's, tcpdump's, Wireshark's),
// reassembles TCP streams, decrypts QUIC Initial packets (RFC 9001 §5.2),
// reads plain DNS, dissects ClientHello and ServerHello with package ech,
// and builds one Flow per connection: what an observer sees (SNI, ALPN, the
// ECH extension's outer fields, a JA4 fingerprint, the server's choices)
// and, given the ECH keys, what ECH hid. Report writers turn the result into
// a terminal table, JSON lines, CSV or Markdown, with a privacy summary per
// scenario: which names an observer learned, and from where.
package lab
