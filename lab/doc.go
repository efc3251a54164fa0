// Package lab is echlab's embedded lab: it runs every echlab component in
// one process on loopback, drives scenarios through them, and reads the
// traffic back the way an on-path observer would.
//
// # Runner
//
// Run (echlab run) takes a RunConfig: the scenarios (Scenarios lists them;
// LookupScenario finds one), the DNS transports (AllTransports: Do53, DoT,
// DoH, DoH3, DoQ), a repeat count and an output folder. Run expands that
// into Cases, one per scenario × transport × repeat. Run then loads or
// generates the ECH key sets and the lab CA, starts the resolver
// (authoritative for lab.test, publishing the HTTPS records with ech=
// from the key sets) and the HTTPS servers (shared, split, forced HRR,
// post-quantum, stale keys, baseline without ECH), runs each case through
// package client (or, for the padding scenarios and ech-hide-alpn, a
// ClientHelloOuter sealed with ech.Seal), judges its outcome, and writes the output folder: the
// capture, the SSLKEYLOGFILE, client/server/query logs as JSON lines, the
// flow reports, report.md, summary.json and manifest.json (the File*
// constants name them). Progress reports the phases while it runs.
//
// # Scenarios
//
// Each scenario is one Scenario value, declared in scenarios.go: its client
// (ClientSpec: fetch mode, HTTP/3, a sealed or ESNI probe, a padding
// sweep), the server it needs (Service*), what judge checks (Expect), what
// the observer must see (Watch, checked by the rows), how its rows read
// (Render), and whether and how Play runs it (PlaySpec). Run, Play, the rows
// and the glance ask the value; PlayScenarios is a view of the same list.
//
// # Adversary grid
//
// RunGrid (echlab run --adversary) starts the same lab with an adversary
// in the observer's place: the recording relays' Filter is a column of
// lab/adversary policies, one fresh Adversary per cell. Each GridRow (a
// client kind: echlab fail-closed or --fallback, GREASE, HTTP/3, a plain
// crypto/tls program; discovering over Do53 or DoH) connects once per
// column, and each GridCell says how it ended (ECH, in the clear, GREASE,
// failed and at which step), where the true name leaked, what the
// adversary did, and what RFC 9849/9848 expect of a compliant client
// (grid_expect.go). GridColumns is the default set of columns.
//
// # Observer (package lab/capture)
//
// Capture comes in two kinds, both in package capture. StartLiveCapture
// reads real packets from a Linux packet socket (root or CAP_NET_RAW) and
// writes them as pcapng; elsewhere it returns an error wrapping
// errors.ErrUnsupported. Without that privilege, or off Linux, the runner
// puts an Observer (recording relays) in front of every listener, and its
// Recorder notes every byte the client exchanges with the time it was
// seen, then writes a pcapng with synthesized Ethernet/IP/TCP/UDP framing
// (handshakes, sequence numbers, MSS-sized segments, FIN) that Wireshark
// and tshark open like a real capture. Synthesized captures say so in
// their section header comment, and Compare reports it.
//
// # Compare (package lab/observe)
//
// observe.Compare (echlab compare, and the last step of Run) reads any
// pcap or pcapng (the lab's, tcpdump's, Wireshark's), reassembles TCP
// streams, decrypts QUIC Initial packets (RFC 9001 §5.2), reads plain DNS,
// dissects ClientHello and ServerHello with package ech, and builds one
// Flow per connection: what an observer sees (SNI, ALPN, the ECH
// extension's outer fields, a JA4 fingerprint, the server's choices) and,
// given the ECH keys, what ECH hid. Report writers turn the result into a
// terminal table, JSON lines, CSV or Markdown, with a privacy summary per
// scenario: which names an observer learned, and from where. WriteGlance
// (here in lab) puts the run's expected and observed outcomes side by
// side.
//
// Dependencies point one way: lab → lab/observe → lab/capture.
package lab
