// Package interop runs real browsers against the lab: headless Chromium and
// Firefox ESR resolve the lab names through echlab's DoH resolver and
// connect to echlab's shared-mode ECH server, and the server's JSON
// connection log says what each browser sent.
//
// Run starts the lab in-process (lab CA, ECH key sets, server with HTTP/2
// and HTTP/3, resolver with DoH), launches one fresh browser profile per
// case, and writes results.json, results.txt and the connection and query
// logs to an output directory. The cases are: ECH accepted with a published
// config, GREASE ECH for a name without an HTTPS record, recovery through
// retry configs from a stale published config after a key rotation, and
// ECH over HTTP/3.
//
// The handshakes are also captured live on loopback (capture.pcapng) and
// read back with lab.Compare and the lab's keys, as an on-path observer
// with the keys would see them (flows.jsonl, flows.csv, compare.md). Each
// flow is joined to its browser and case by the ClientHello randoms of the
// browser's own SSLKEYLOGFILE, and the server's records are settled by
// those flows; each result carries that Observed view, and a case passes
// only when the capture agrees with the server.
//
// RunGrid (echlab interop browsers --adversary) is issue 16's browser
// grid: the lab with lab/adversary's relays in front of the server, the
// DoH resolver and a Do53 resolver (which the namespace's resolv.conf
// points at, see UseResolvConf), and each browser configuration (GridRows:
// DoH only, or DoH with the system resolver as fallback) loading the ech
// case against each policy column; each cell says ECH, the name in the
// clear, or failed with the browser's own error, where the adversary saw
// the name, and what RFC 9849 expects (grid-browsers.json, .md).
//
// Browsers must never reach the machine's own resolver, so Run refuses to
// start a browser unless the process is in a network namespace that has
// only a loopback interface; Reexec starts the current program in a fresh
// one (root only). The harness needs Linux network namespaces: elsewhere
// Isolated and Reexec return an error wrapping errors.ErrUnsupported.
package interop
