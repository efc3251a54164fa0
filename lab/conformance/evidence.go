package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/resolver"
)

// Hello is one ClientHello as the relay in front of the server saw it.
type Hello struct {
	SNI string `json:"sni"` // the cleartext server_name
	// ECH is "" (no encrypted_client_hello), "real" (an outer extension
	// with a cleartext SNI other than the true name: a real offer) or
	// "grease" (an outer extension next to the true name in the clear).
	ECH      string `json:"ech,omitempty"`
	ConfigID *uint8 `json:"config_id,omitempty"` // the extension's config_id
	Error    string `json:"error,omitempty"`     // the bytes did not parse as a ClientHello
}

// String is the hello in a few words: "ECH id 1 (public.lab.test)".
func (h Hello) String() string {
	switch {
	case h.Error != "":
		return "unparsed (" + h.Error + ")"
	case h.ECH == "real":
		return fmt.Sprintf("ECH id %d (SNI %s)", *h.ConfigID, h.SNI)
	case h.ECH == "grease":
		return fmt.Sprintf("GREASE id %d (SNI %s)", *h.ConfigID, h.SNI)
	}
	return "no ECH (SNI " + h.SNI + ")"
}

// helloLog is the Filter of the relay in front of the case's server: it
// passes everything and keeps each connection's ClientHello. The relay
// calls Stream before it dials the server, so a hello is logged before
// the client can get any answer to it.
type helloLog struct {
	mu     sync.Mutex
	hellos []Hello
}

// Stream implements capture.Filter.
func (l *helloLog) Stream(_ capture.Flow, first []byte) capture.Verdict {
	h := Hello{}
	ch, err := ech.ParseClientHelloRecords(first)
	if err != nil {
		h.Error = err.Error()
	} else {
		h.SNI = ch.ServerName
		if ch.ECH != nil && ch.ECH.Type == ech.ECHOuter {
			id := ch.ECH.ConfigID
			h.ConfigID, h.ECH = &id, "real"
			if strings.EqualFold(strings.TrimSuffix(h.SNI, "."), SecretName) {
				h.ECH = "grease"
			}
		}
	}
	l.mu.Lock()
	l.hellos = append(l.hellos, h)
	l.mu.Unlock()
	return capture.Pass
}

// Datagram implements capture.Filter (the relay is TCP only).
func (l *helloLog) Datagram(_ capture.Flow, _ bool, b []byte) ([]byte, capture.Verdict) {
	return b, capture.Pass
}

// take returns the hellos logged so far and empties the log.
func (l *helloLog) take() []Hello {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.hellos
	l.hellos = nil
	return h
}

// queryLog receives the resolver's query log (JSON lines).
type queryLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (q *queryLog) Write(b []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.buf.Write(b)
}

// take returns the queries logged so far and empties the log.
func (q *queryLog) take() []Query {
	q.mu.Lock()
	data := append([]byte(nil), q.buf.Bytes()...)
	q.buf.Reset()
	q.mu.Unlock()
	var out []Query
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var e resolver.QueryLogEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, Query{Transport: e.Transport, Name: e.QName, Type: e.QType, Rcode: e.Rcode, Size: e.Size})
		}
	}
	return out
}

// Query is one DNS query the resolver answered.
type Query struct {
	Transport string `json:"transport"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	Rcode     string `json:"rcode"`
	Size      int    `json:"size"` // the answer's size before truncation
}

// Evidence is what one client did in one case.
type Evidence struct {
	Hellos  []Hello `json:"hellos"`  // the ClientHellos on the wire, in order
	Queries []Query `json:"queries"` // the DNS queries the resolver answered
	// What the client reported.
	ECHAccepted bool    `json:"ech_accepted"`
	Retried     bool    `json:"retried"`
	ConfigID    *uint8  `json:"config_id,omitempty"` // the config the client says it offered first
	ErrorClass  string  `json:"error_class,omitempty"`
	Error       string  `json:"error,omitempty"`
	Outcome     Outcome `json:"outcome"`
	// Browser is what a browser client's run did (browser_client.go).
	Browser *BrowserRun `json:"browser,omitempty"`
	// Capture is the cell's pcapng (the flows the relay in front of the
	// server carried for this client), relative to Options.OutDir; "" when
	// no capture was written.
	Capture string `json:"capture,omitempty"`
}

// outcome derives the end state from what the client reported and what
// the wire showed.
func (e *Evidence) outcome() Outcome {
	switch {
	case e.Error == "" && e.ECHAccepted && e.Retried:
		return OutcomeECHRetried
	case e.Error == "" && e.ECHAccepted:
		return OutcomeECH
	case len(e.Hellos) > 0 && e.Hellos[0].ECH == "grease":
		return OutcomeGREASE
	case e.Error == "":
		return OutcomeClear
	case len(e.Hellos) == 0:
		return OutcomeRefused
	}
	return OutcomeFailed
}

// httpsQueries counts the HTTPS queries (a UDP query retried over TCP
// counts twice).
func (e *Evidence) httpsQueries() int { return e.queriesOf("HTTPS") }

// queriesOf counts the queries of one type ("HTTPS", "SVCB").
func (e *Evidence) queriesOf(qtype string) int {
	n := 0
	for _, q := range e.Queries {
		if q.Type == qtype {
			n++
		}
	}
	return n
}

// wire sums the hellos up: "ECH id 1 (SNI public.lab.test); ECH id 2 …".
func (e *Evidence) wire() string {
	if len(e.Hellos) == 0 {
		return "no ClientHello"
	}
	parts := make([]string, len(e.Hellos))
	for i, h := range e.Hellos {
		parts[i] = h.String()
	}
	return strings.Join(parts, "; ")
}
