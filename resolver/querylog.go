package resolver

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// QueryLogEntry is one line of the query log (JSON Lines).
type QueryLogEntry struct {
	Time      string `json:"time"` // RFC 3339 with nanoseconds, UTC
	Transport string `json:"transport"`
	Client    string `json:"client,omitempty"`
	QName     string `json:"qname"`
	QType     string `json:"qtype"`
	Rcode     string `json:"rcode"`
	Size      int    `json:"size"` // the answer's packed size in bytes, before truncation or padding
	LatencyUS int64  `json:"latency_us"`
}

// withQueryLog returns a Handler that answers with h and writes one
// QueryLogEntry line to w per query. now may be nil (time.Now). Writes are
// serialised; a failing writer does not fail queries.
func withQueryLog(h Handler, w io.Writer, now func() time.Time) Handler {
	if now == nil {
		now = time.Now
	}
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	observe := func(o *fastObs) { // the UDP fast path's queries
		e := o.logEntry()
		mu.Lock()
		enc.Encode(e)
		mu.Unlock()
	}
	return &middleware{next: h, observe: observe, Handler: HandlerFunc(func(ctx context.Context, req *dns.Msg, meta Meta) *dns.Msg {
		start := now()
		resp := h.Answer(ctx, req, meta)
		e := newEntry(req, resp, meta)
		e.Time = start.UTC().Format(time.RFC3339Nano)
		e.LatencyUS = now().Sub(start).Microseconds()
		mu.Lock()
		enc.Encode(e)
		mu.Unlock()
		return resp
	})}
}

func newEntry(req, resp *dns.Msg, meta Meta) QueryLogEntry {
	e := QueryLogEntry{Transport: meta.Transport, QName: ".", QType: "NONE"}
	if meta.Client != nil {
		e.Client = meta.Client.String()
	}
	if req != nil && len(req.Question) > 0 {
		e.QName = req.Question[0].Name
		e.QType = typeName(req.Question[0].Qtype)
	}
	if resp != nil {
		e.Rcode = rcodeName(resp.Rcode)
		e.Size = resp.Len()
	}
	return e
}

func typeName(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + itoa(int(t))
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return "RCODE" + itoa(rc)
}

func itoa(n int) string { return strconv.Itoa(n) }
