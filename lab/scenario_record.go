package lab

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"slices"
	"sync"

	"github.com/miekg/dns"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/resolver"
)

// caseRecord collects, while a case runs, the identifiers its flows carry
// on the wire, so that Compare can join each flow to the case exactly
// (see ScenarioRule): the ClientHello randoms of its TLS and QUIC
// connections and the ids of its Do53 queries.
//
// As an io.Writer it is the case's SSLKEYLOGFILE: every line goes on to
// the run's keylog, and its client_random field (second field of every
// RFC 9850 line) is kept. crypto/tls logs the inner random when ECH was
// accepted, the client's ECH_CONFIG line the outer one. Its clientHello
// method is the client's OnClientHello hook: the random of every
// ClientHello the client wrote (the outer one under ECH, GREASE's), also
// of attempts that died before any keylog line, such as a QUIC handshake
// that timed out on one address before the next.
type caseRecord struct {
	keylog io.Writer // the run's keylog; nil discards

	mu      sync.Mutex
	partial []byte // a line not yet ended by '\n'
	randoms []string
	ids     []uint16
}

func newCaseRecord(keylog io.Writer) *caseRecord { return &caseRecord{keylog: keylog} }

// Write passes b on to the run's keylog and keeps the client randoms of
// its lines.
func (r *caseRecord) Write(b []byte) (int, error) {
	r.mu.Lock()
	r.partial = append(r.partial, b...)
	for {
		i := bytes.IndexByte(r.partial, '\n')
		if i < 0 {
			break
		}
		if f := bytes.Fields(r.partial[:i]); len(f) >= 2 && len(f[1]) == 64 {
			if raw, err := hex.DecodeString(string(f[1])); err == nil {
				r.addRandomLocked(raw)
			}
		}
		r.partial = r.partial[i+1:]
	}
	r.mu.Unlock()
	if r.keylog == nil {
		return len(b), nil
	}
	return r.keylog.Write(b)
}

// addHello keeps the random of the ClientHello at the start of records
// (a TLS record), for probes that write no keylog line.
func (r *caseRecord) addHello(records []byte) {
	if raw := client.ClientHelloRandom(records); raw != nil {
		r.mu.Lock()
		r.addRandomLocked(raw)
		r.mu.Unlock()
	}
}

// clientHello keeps the random of a ClientHello the client sent: it is
// client.Options.OnClientHello, called before Fetch returns.
func (r *caseRecord) clientHello(random []byte) {
	r.mu.Lock()
	r.addRandomLocked(random)
	r.mu.Unlock()
}

func (r *caseRecord) addRandomLocked(raw []byte) {
	if h := hex.EncodeToString(raw); !slices.Contains(r.randoms, h) {
		r.randoms = append(r.randoms, h)
	}
}

// fill copies what was recorded into the case's result.
func (r *caseRecord) fill(cr *CaseResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cr.ClientRandoms = slices.Clone(r.randoms)
	cr.DNSIDs = slices.Clone(r.ids)
}

// idStub is a DNS stub that records the id of every query it sends. The
// resolver package's Do53 clients (udp://, tcp://) send a query with the
// id it has, so these are the ids on the wire.
type idStub struct {
	resolver.Client
	rec *caseRecord
}

// Exchange records m's id and sends m through the stub.
func (s idStub) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	s.rec.mu.Lock()
	if !slices.Contains(s.rec.ids, m.Id) {
		s.rec.ids = append(s.rec.ids, m.Id)
	}
	s.rec.mu.Unlock()
	return s.Client.Exchange(ctx, m)
}
