// Package observe is what a passive observer learns from a capture: Compare
// reads a pcap or pcapng (through package capture), reassembles TCP
// streams, decrypts QUIC Initial packets (RFC 9001 §5.2), reads plain DNS,
// dissects ClientHello and ServerHello with package ech, and builds one Flow
// per connection (SNI, ALPN, the ECH or ESNI extension's outer fields, a
// JA4 fingerprint, the server's choices) and, given ECH keys or a keylog,
// what ECH hid. ReadScenarioMap's rules join each flow to the scenario that
// made it; ReadAdversaryLog's decisions of an on-path adversary
// (lab/adversary's log, read here without importing it) mark the flows
// they acted on. Report writers turn the result into a terminal table,
// JSON lines, CSV or Markdown with a privacy summary per scenario.
package observe
