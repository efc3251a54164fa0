package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// qlogEvent is the part of a qlog event these tests read.
type qlogEvent struct {
	Name string   `json:"name"`
	Data qlogData `json:"data"`
}

type qlogData struct {
	EventType string `json:"event_type"`
	Header    struct {
		PacketType string `json:"packet_type"`
	} `json:"header"`
	Raw struct {
		Length int `json:"length"`
	} `json:"raw"`
	Frames []qlogFrame `json:"frames"`
}

// Length is the size of a packet event's packet.
func (e qlogEvent) Length() int { return e.Data.Raw.Length }

type qlogFrame struct {
	FrameType string `json:"frame_type"`
	Offset    int    `json:"offset"`
	Length    int    `json:"length"`
}

// packetEvent makes a 1200-byte packet event with CRYPTO frames
// {offset, length}.
func packetEvent(name, space string, crypto ...[2]int) qlogEvent {
	e := qlogEvent{Name: "transport:packet_" + name}
	e.Data.Header.PacketType = space
	e.Data.Raw.Length = 1200
	for _, c := range crypto {
		e.Data.Frames = append(e.Data.Frames, qlogFrame{FrameType: "crypto", Offset: c[0], Length: c[1]})
	}
	return e
}

// readQlog decodes a JSON-SEQ qlog file (RFC 7464: each record starts
// with 0x1E); the first record is the trace header.
func readQlog(t *testing.T, path string) []qlogEvent {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var evs []qlogEvent
	for _, rec := range bytes.Split(b, []byte{0x1e}) {
		if len(bytes.TrimSpace(rec)) == 0 {
			continue
		}
		var e qlogEvent
		if err := json.Unmarshal(rec, &e); err != nil {
			t.Fatalf("%s: %v in %q", path, err, rec)
		}
		evs = append(evs, e)
	}
	return evs
}

// closedTraces waits until dir holds n client and n server traces, each
// complete: with its connection's close, ending in a whole record, and no
// longer growing (quic-go writes the file in the background and flushes
// it when the connection ends).
func closedTraces(t *testing.T, dir string, n int) map[string][]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	sizes := map[string]int{}
	for {
		byside := map[string][]string{}
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlog"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			last := b[bytes.LastIndexByte(b, 0x1e)+1:]
			if bytes.Contains(b, []byte(`"transport:connection_closed"`)) && json.Valid(last) && sizes[f] == len(b) {
				side := strings.TrimSuffix(f[strings.LastIndex(f, "_")+1:], ".sqlog")
				byside[side] = append(byside[side], f)
			}
			sizes[f] = len(b)
		}
		if len(byside["client"]) >= n && len(byside["server"]) >= n {
			return byside
		}
		if time.Now().After(deadline) {
			t.Fatalf("qlog traces in %s after 10s: %d files, complete: %v", dir, len(files), byside)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cryptoEnd is the end of the CRYPTO data in packets sent in space
// ("initial", "handshake") among evs.
func cryptoEnd(evs []qlogEvent, space string) int {
	end := 0
	for _, e := range evs {
		if e.Name != "transport:packet_sent" || e.Data.Header.PacketType != space {
			continue
		}
		for _, f := range e.Data.Frames {
			if f.FrameType == "crypto" {
				end = max(end, f.Offset+f.Length)
			}
		}
	}
	return end
}

func hasCrypto(e qlogEvent) bool {
	return slices.ContainsFunc(e.Data.Frames, func(f qlogFrame) bool { return f.FrameType == "crypto" })
}

// flightStall says what in one side's qlog events shows a handshake that
// had to wait on its peer ("" if nothing):
//   - a Retry;
//   - a client whose ClientHello did not all go out in at most two
//     Initial packets before the ServerHello came;
//   - a server held by the anti-amplification limit (RFC 9000 §8.1, the
//     wait the 7 ms of issue 15 was suspected of): it received a datagram
//     while it still had CRYPTO data of its first flight to send and had
//     sent within one packet (1200 bytes) of 3× what it had received.
//
// Timers that expire, and the packets they send again, are not counted:
// the PTO is a few ms on loopback (the server ACKs the first of two
// Initials at once, a tiny RTT sample), so on a loaded machine a
// scheduling delay fires it, with or without ECH.
func flightStall(side string, evs []qlogEvent) string {
	for _, e := range evs {
		if e.Name == "transport:packet_received" && e.Data.Header.PacketType == "retry" {
			return "Retry received"
		}
	}
	if side == "client" {
		end := slices.IndexFunc(evs, func(e qlogEvent) bool { return e.Name == "transport:packet_received" && hasCrypto(e) })
		if end < 0 {
			end = len(evs)
		}
		n, sentEnd := 0, 0 // packets that carried new ClientHello bytes
		for _, e := range evs[:end] {
			if e.Name == "transport:packet_sent" && e.Data.Header.PacketType == "initial" {
				if c := cryptoEnd([]qlogEvent{e}, "initial"); c > sentEnd {
					n, sentEnd = n+1, c
				}
			}
		}
		if all := cryptoEnd(evs, "initial"); sentEnd < all || n > 2 {
			return fmt.Sprintf("ClientHello of %d bytes: %d bytes in %d Initial packets before the ServerHello", all, sentEnd, n)
		}
		return ""
	}
	all := cryptoEnd(evs, "initial") + cryptoEnd(evs, "handshake")
	sent, received := 0, 0
	for i, e := range evs {
		switch e.Name {
		case "transport:packet_sent":
			sent += e.Length()
		case "transport:packet_received":
			if e.Data.Header.PacketType == "handshake" {
				return "" // the client's address is validated: no limit
			}
			done := cryptoEnd(evs[:i], "initial") + cryptoEnd(evs[:i], "handshake")
			if received > 0 && done < all && sent+1200 > 3*received {
				return fmt.Sprintf("amplification limit: %d of %d bytes of its first flight sent, %d bytes sent for %d received", done, all, sent, received)
			}
			received += e.Length()
		}
	}
	return ""
}

// TestFlightStall checks flightStall on made-up traces.
func TestFlightStall(t *testing.T) {
	recv := packetEvent("received", "initial")
	for _, c := range []struct {
		name, side string
		evs        []qlogEvent
		stalled    bool
	}{
		{"client two Initials, an ACK between", "client", []qlogEvent{packetEvent("sent", "initial", [2]int{0, 1200}), recv,
			packetEvent("sent", "initial", [2]int{1200, 500}), packetEvent("received", "initial", [2]int{0, 90})}, false},
		{"client three Initials", "client", []qlogEvent{packetEvent("sent", "initial", [2]int{0, 1000}), packetEvent("sent", "initial", [2]int{1000, 1000}),
			packetEvent("sent", "initial", [2]int{2000, 10}), packetEvent("received", "initial", [2]int{0, 90})}, true},
		{"client ClientHello sent again (PTO)", "client", []qlogEvent{packetEvent("sent", "initial", [2]int{0, 1000}), packetEvent("sent", "initial", [2]int{1000, 500}), recv,
			packetEvent("sent", "initial", [2]int{0, 1000}), packetEvent("sent", "initial", [2]int{1000, 500}), packetEvent("received", "initial", [2]int{0, 90})}, false},
		{"client rest of the ClientHello after the ServerHello", "client", []qlogEvent{packetEvent("sent", "initial", [2]int{0, 1000}),
			packetEvent("received", "initial", [2]int{0, 90}), packetEvent("sent", "initial", [2]int{1000, 500})}, true},
		{"server flight split by an ACK", "server", []qlogEvent{recv, packetEvent("sent", "initial"), recv, packetEvent("sent", "initial", [2]int{0, 90}),
			recv, packetEvent("sent", "handshake", [2]int{0, 1100}), packetEvent("sent", "handshake", [2]int{1100, 900}), packetEvent("received", "handshake")}, false},
		{"server amplification-limited", "server", []qlogEvent{recv, packetEvent("sent", "initial", [2]int{0, 90}), packetEvent("sent", "handshake", [2]int{0, 1100}),
			packetEvent("sent", "handshake", [2]int{1100, 1100}), recv, packetEvent("sent", "handshake", [2]int{2200, 900})}, true},
		{"Retry", "client", []qlogEvent{packetEvent("sent", "initial", [2]int{0, 1200}), packetEvent("received", "retry")}, true},
	} {
		if got := flightStall(c.side, c.evs); (got != "") != c.stalled {
			t.Errorf("%s: flightStall = %q, want stalled %v", c.name, got, c.stalled)
		}
	}
}

// stalls runs flightStall on every trace and logs the timers that
// expired (see flightStall for why they are not failures).
func stalls(t *testing.T, traces map[string][]string) []string {
	var out []string
	for side, files := range traces {
		for _, f := range files {
			evs := readQlog(t, f)
			if s := flightStall(side, evs); s != "" {
				out = append(out, side+" "+filepath.Base(f)+": "+s)
			}
			for _, e := range evs {
				if e.Name == "recovery:loss_timer_updated" && e.Data.EventType == "expired" {
					t.Logf("%s %s: a loss timer expired (scheduling delay?)", side, filepath.Base(f))
				}
			}
		}
	}
	return out
}

// TestECHOverHTTP3Qlog: with QLOGDIR set, an ECH fetch over HTTP/3
// against the echlab server leaves a qlog trace of both sides, and the
// traces show no handshake that waited on its peer mid-flight (see
// flightStall).
func TestECHOverHTTP3Qlog(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "qlog") // created on first use
	t.Setenv("QLOGDIR", dir)
	u, o := echlabServer(t, ModeECH, true)
	const n = 3
	for range n {
		r := mustFetch(t, u, o)
		if r.ECH != ECHAccepted || r.HTTPProto != "HTTP/3.0" {
			t.Fatalf("ech=%s proto=%s", r.ECH, r.HTTPProto)
		}
	}
	if s := stalls(t, closedTraces(t, dir, n)); len(s) > 0 {
		t.Errorf("ECH over HTTP/3 stalled: %v", s)
	}
}

// TestQlogDirUnusable: a QLOGDIR that cannot be created (under a regular
// file) means no trace, not quic-go's log.Fatal: the fetch succeeds.
func TestQlogDirUnusable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("QLOGDIR", filepath.Join(file, "qlog"))
	u, o := echlabServer(t, ModeECH, true)
	if r := mustFetch(t, u, o); r.ECH != ECHAccepted {
		t.Fatalf("ech=%s", r.ECH)
	}
}
