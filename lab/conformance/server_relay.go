package conformance

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/relay"
)

// relayIdle bounds how long a relayed connection may sit without traffic.
const relayIdle = 30 * time.Second

// TLS handshake message types and the HelloRetryRequest random (RFC 8446
// §4.1.3) the relays look for.
const (
	typeServerHello = 2
	randomOffset    = 4 + 2 // handshake header, legacy_version
)

var hrrRandom = [32]byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// ErrFirstFlight reports a server first flight a relay could not edit as
// its variant says: it did not start with a ServerHello.
var ErrFirstFlight = errors.New("conformance: server's first flight is not a ServerHello")

// firstFlightEdit is what a relay does with the records holding the
// server's first handshake message (records, as read) whose message is
// msg. It returns the bytes to send the client and whether to go on
// relaying (false closes both connections after the bytes are sent).
type firstFlightEdit func(records, msg []byte) (out []byte, goOn bool, err error)

// flipConfirmation flips the last bit of the ServerHello's random, inside
// the 8 bytes RFC 9849 §7.2 makes the ECH acceptance confirmation.
func flipConfirmation(records, msg []byte) ([]byte, bool, error) {
	if err := isServerHello(msg); err != nil {
		return nil, false, err
	}
	off, err := recordOffset(records, randomOffset+31)
	if err != nil {
		return nil, false, err
	}
	out := append([]byte(nil), records...)
	out[off] ^= 0x01
	return out, true, nil
}

// closeAfterServerHello forwards the records holding the ServerHello and
// stops.
func closeAfterServerHello(records, msg []byte) ([]byte, bool, error) {
	if err := isServerHello(msg); err != nil {
		return nil, false, err
	}
	return records, false, nil
}

// isServerHello checks msg is a ServerHello and not a HelloRetryRequest.
func isServerHello(msg []byte) error {
	if len(msg) < randomOffset+32 || msg[0] != typeServerHello {
		return ErrFirstFlight
	}
	if [32]byte(msg[randomOffset:randomOffset+32]) == hrrRandom {
		return fmt.Errorf("%w: it is a HelloRetryRequest", ErrFirstFlight)
	}
	return nil
}

// recordOffset maps offset i of the first handshake message carried by
// records (as ech.HandshakeFromRecords reassembles it, change_cipher_spec
// records skipped) to its offset in records.
func recordOffset(records []byte, i int) (int, error) {
	for off := 0; off+5 <= len(records); {
		length := int(records[off+3])<<8 | int(records[off+4])
		body := off + 5
		off = body + length
		if records[body-5] != 22 { // not handshake: skipped by the reassembly
			continue
		}
		if i < length {
			return body + i, nil
		}
		i -= length
	}
	return 0, fmt.Errorf("%w: offset beyond its records", ErrFirstFlight)
}

// readFirstHandshake reads from c exactly the TLS records that hold the
// first handshake message, and returns them with the message.
func readFirstHandshake(c net.Conn) (records, msg []byte, err error) {
	for {
		msg, n, err := ech.HandshakeFromRecords(records)
		if err == nil {
			return records[:n], msg, nil
		}
		if !errors.Is(err, ech.ErrNeedMore) {
			return records, nil, err
		}
		more := make([]byte, n-len(records))
		if _, err := io.ReadFull(c, more); err != nil {
			return records, nil, err
		}
		records = append(records, more...)
	}
}

// editRelay is a TCP relay in front of a server that hands the client's
// first handshake message to the server unchanged, edits the server's
// first one, and then (if the edit says so) relays both ways.
type editRelay struct {
	ln      net.Listener
	backend string
	edit    firstFlightEdit

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// startRelay listens on 127.0.0.1:0 and relays to backend.
func startRelay(backend string, edit firstFlightEdit) (*editRelay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("conformance: relay: %w", err)
	}
	r := &editRelay{ln: ln, backend: backend, edit: edit, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *editRelay) addr() string { return r.ln.Addr().String() }

func (r *editRelay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			c.Close()
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer r.untrack(c)
			r.serve(c)
		}()
	}
}

// track registers c so that close can end it; false once closed.
func (r *editRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *editRelay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

// serve relays one client connection.
func (r *editRelay) serve(client net.Conn) {
	server, err := net.DialTimeout("tcp", r.backend, 5*time.Second)
	if err != nil {
		return
	}
	if !r.track(server) {
		server.Close()
		return
	}
	defer r.untrack(server)
	deadline := time.Now().Add(relayIdle)
	client.SetDeadline(deadline) //nolint:errcheck
	server.SetDeadline(deadline) //nolint:errcheck
	hello, _, err := readFirstHandshake(client)
	if err != nil {
		return
	}
	if _, err := server.Write(hello); err != nil {
		return
	}
	records, msg, err := readFirstHandshake(server)
	if err != nil {
		client.Write(records) //nolint:errcheck // an alert or a cut flight, passed on as it came
		return
	}
	out, goOn, err := r.edit(records, msg)
	if err != nil {
		return
	}
	if _, err := client.Write(out); err != nil || !goOn {
		return
	}
	client.SetDeadline(time.Time{}) //nolint:errcheck
	server.SetDeadline(time.Time{}) //nolint:errcheck
	relay.Pipe(client, server, relayIdle)
}

// close stops accepting, ends every relayed connection and waits for
// their goroutines.
func (r *editRelay) close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}
