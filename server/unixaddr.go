package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// UnixPrefix marks an address as a Unix domain socket path: a server's
// Config.Addr "unix:/run/echlab/backend.sock" listens there, and a split
// route "secret.lab.test=unix:/run/echlab/backend.sock" forwards there.
// A split front and a backend on one host skip the kernel's TCP work for
// the hop (a loopback TCP connection costs the two processes about 2.5
// times the CPU of a Unix socket one: see bench/handshakes.sh,
// split-unix/ECH).
const UnixPrefix = "unix:"

// unixPath returns the path of a "unix:PATH" address.
func unixPath(addr string) (string, bool) {
	p, ok := strings.CutPrefix(addr, UnixPrefix)
	return p, ok
}

// checkAddr validates a TCP host:port or a unix:PATH address.
func checkAddr(addr string) error {
	if p, ok := unixPath(addr); ok {
		if p == "" {
			return errors.New("unix: needs a socket path")
		}
		return nil
	}
	_, _, err := net.SplitHostPort(addr)
	return err
}

// listenStream listens on a TCP host:port or a unix:PATH address. A socket
// file left at PATH by a server that is gone is replaced; one that a live
// server answers on is an error, as a TCP port in use is. The socket is
// made 0600: only processes of the same user (a split front) connect.
func listenStream(addr string) (net.Listener, error) {
	p, ok := unixPath(addr)
	if !ok {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Lstat(p); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: %s exists and is not a socket", addr, p)
		}
		c, err := net.DialTimeout("unix", p, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: a server is listening there", addr)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("listen %s: %w", addr, err)
		}
		if err := os.Remove(p); err != nil {
			return nil, fmt.Errorf("listen %s: stale socket: %w", addr, err)
		}
	}
	ln, err := net.Listen("unix", p)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(p, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}

// listenerAddr formats a listener's address as listenStream reads it.
func listenerAddr(ln net.Listener) string {
	if ua, ok := ln.Addr().(*net.UnixAddr); ok {
		return UnixPrefix + ua.Name
	}
	return ln.Addr().String()
}

// dialStream dials a TCP host:port or a unix:PATH address.
func dialStream(addr string, timeout time.Duration) (net.Conn, error) {
	if p, ok := unixPath(addr); ok {
		return net.DialTimeout("unix", p, timeout)
	}
	return net.DialTimeout("tcp", addr, timeout)
}
