// Package capture writes and reads the lab's captures: it reads any pcap or
// pcapng as a stream, one packet at a time (Read, DecodeLink), into decoded
// TCP/UDP packets, captures live from
// a Linux AF_PACKET socket (StartLiveCapture; elsewhere an error wrapping
// errors.ErrUnsupported), splits GSO/TSO super-packets, and records
// connections through wrapped sockets and relays (Recorder, Observer) to
// write a synthesized pcapng with Ethernet/IP/TCP/UDP framing (WritePcapng,
// WriteScript). The Observer's relays can also act: a Filter (an on-path
// adversary, see lab/adversary) sees each TCP connection's first handshake
// message and every datagram (and Do53-over-TCP message), and passes,
// rewrites, drops or resets it. InsertDSB embeds TLS secrets in a pcapng.
// The pcap and pcapng readers and the pcapng writer are its own
// (pcap_read.go, pcap_classic.go, pcap_write.go), so that no packet
// library's start-up tables weigh on every echlab process. It imports no
// other lab package.
package capture
