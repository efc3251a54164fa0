// Package resolver is the lab's DNS side: an authoritative server that
// answers from zone files and publishes ECH configs in HTTPS records, the
// transports that carry it (Do53 over UDP and TCP, DoT, DoH over HTTP/1.1,
// HTTP/2 and HTTP/3, DoQ), and a stub client for each of them.
//
// Every transport calls one shared Handler, so all of them give the same
// answers and write the same query log.
package resolver
