// Package intercept puts a capture.Observer's relays on the path of a
// network namespace's own outgoing traffic, so that an on-path adversary
// (the Observer's Filter) can act on a client that does not know about it.
//
// The docker lab's observer shares the client's network namespace. Start
// opens one relay per intercepted destination (a fixed address:port and
// protocol: the compose file pins every service address), then installs
// an nftables table (over netlink: no nft binary is needed) whose nat
// output chain rewrites the destination of the namespace's new TCP
// connections and UDP flows to those destinations to the relay's
// 127.0.0.1 port. Connection tracking undoes the rewrite on the replies,
// so the client still sees the real server's address. The relays dial the
// real destination themselves; their sockets are told apart from the
// client's by a socket mark: Start gives the Observer a Dialer that sets
// SO_MARK to Config.Mark on every socket a relay dials, and the rules skip
// packets with that mark. Nothing else in the process is marked, so its
// other connections to the targets are intercepted like the client's.
//
// Close deletes the table (the namespace's traffic flows directly again),
// then closes the relays. A table left behind by a killed process is
// replaced by the next Start.
//
// Linux only: elsewhere Start returns an error wrapping
// errors.ErrUnsupported.
package intercept
