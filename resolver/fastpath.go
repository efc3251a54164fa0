package resolver

import (
	"context"
	"sync"

	"github.com/miekg/dns"
)

// maxFastEntries bounds the answers one cache holds; once full, queries
// that miss it go to the slow path (a flood of random names cannot grow
// it further).
const maxFastEntries = 1 << 13

// The UDP fast path answers plain queries (parseFastQuery) from answers
// compiled to wire format, patching only the ID in. An answer is compiled
// the first time its key is asked, by the slow path itself (decodeQuery,
// Authority.answer, Pack, as the UDP server does), from the zones of the
// cache's own authState: SetZones swaps zones and cache together, so a
// publish or a rotation drops every answer compiled before it. Queries the
// fast path declines, answers that need truncation, and forwarded or
// out-of-zone names go to the Handler chain.

// fastEntry is a compiled answer.
type fastEntry struct {
	wire []byte // the packed, compressed answer; its ID is patched in
	full int    // its length without compression: above the client's size the slow path truncates
	// What the query log and metrics record, as they name it.
	qname, qtype, rcode string
	size                int   // the answer's Len before truncation (the query log's size)
	qtypeNum            int32 // the question's type, noQType without one
	rcodeNum            int
}

// fastCache holds the answers compiled from one authState's zones, by key
// (question as sent and variant octet).
type fastCache struct {
	mu sync.RWMutex
	m  map[string]*fastEntry
}

func newFastCache() *fastCache { return &fastCache{m: map[string]*fastEntry{}} }

func (c *fastCache) get(key []byte) *fastEntry {
	c.mu.RLock()
	e := c.m[string(key)]
	c.mu.RUnlock()
	return e
}

// full says whether the cache takes no more answers.
func (c *fastCache) full() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m) >= maxFastEntries
}

// put stores e unless the cache is full.
func (c *fastCache) put(key []byte, e *fastEntry) {
	c.mu.Lock()
	if len(c.m) < maxFastEntries {
		c.m[string(key)] = e
	}
	c.mu.Unlock()
}

// fastAnswer returns the compiled answer to the UDP query b and the query,
// or nil when the slow path must answer: the query is not plain, the
// answer is not a pure function of the zones, or it needs truncation to
// the client's size (maxSize bounds that as for StartUDP).
func (a *Authority) fastAnswer(b []byte, maxSize int, keyBuf *[maxFastKey]byte) (*fastEntry, fastQuery) {
	q, ok := parseFastQuery(b, maxSize, keyBuf)
	if !ok {
		return nil, q
	}
	st := a.load()
	if st.fast == nil {
		return nil, q
	}
	e := st.fast.get(q.key)
	if e == nil {
		if st.fast.full() {
			return nil, q // a flood of new names: no compiling what the slow path answers again
		}
		if e = a.compile(st, b); e == nil {
			return nil, q
		}
		st.fast.put(q.key, e)
	}
	if e.full > q.size {
		return nil, q
	}
	return e, q
}

// fastStream is fastAnswer for a stream transport, where no answer is
// truncated: a compiled answer too large for the query's UDP size is
// used too. It is asked only after fastAnswer declined, so it looks the
// entry up again and never compiles.
func (a *Authority) fastStream(b []byte, keyBuf *[maxFastKey]byte, qp *fastQuery) *fastEntry {
	q, ok := parseFastQuery(b, dns.MaxMsgSize, keyBuf)
	if !ok {
		return nil
	}
	st := a.load()
	if st.fast == nil {
		return nil
	}
	e := st.fast.get(q.key)
	if e == nil {
		return nil
	}
	*qp = q
	return e
}

// compile answers b as the slow path does, from st's zones, and returns
// the answer for the cache, or nil when it may not be cached.
func (a *Authority) compile(st *authState, b []byte) *fastEntry {
	req := decodeQuery(b)
	if req == nil || req.Response {
		return nil
	}
	resp, local := a.answer(context.Background(), st.zones, req)
	if !local {
		return nil
	}
	e := &fastEntry{qname: ".", qtype: "NONE", rcode: rcodeName(resp.Rcode), size: resp.Len(),
		qtypeNum: noQType, rcodeNum: resp.Rcode}
	if len(req.Question) > 0 {
		q := req.Question[0]
		e.qname, e.qtype, e.qtypeNum = q.Name, typeName(q.Qtype), int32(q.Qtype)
	}
	resp.Compress = false
	e.full = resp.Len()
	resp.Compress = true // as the UDP server packs every answer
	wire, err := resp.Pack()
	if err != nil {
		return nil
	}
	wire[0], wire[1] = 0, 0
	e.wire = wire
	return e
}

// appendFast appends e's answer to q, with q's ID, to dst.
func appendFast(dst []byte, e *fastEntry, q fastQuery) []byte {
	dst = append(dst, e.wire...)
	dst[len(dst)-len(e.wire)], dst[len(dst)-len(e.wire)+1] = q.id[0], q.id[1]
	return dst
}
