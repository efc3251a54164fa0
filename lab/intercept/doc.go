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
// client's by their group: Start sets the process's group ID to Config.GID
// and the rules skip sockets of that group.
//
// Close deletes the table (the namespace's traffic flows directly again),
// then closes the relays and restores the group ID. A table left behind by
// a killed process is replaced by the next Start.
//
// Linux only: elsewhere Start returns an error wrapping
// errors.ErrUnsupported.
package intercept
