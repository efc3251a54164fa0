package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// ErrAnswer is wrapped by every answer that is not the expected one.
var ErrAnswer = errors.New("dnsload: wrong answer")

// AnswerError says which query got which wrong answer.
type AnswerError struct {
	Query  Query
	Reason string
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("dnsload: %s: %s", e.Query, e.Reason)
}

// Unwrap returns ErrAnswer.
func (e *AnswerError) Unwrap() error { return ErrAnswer }

// item is a query of the mix ready to send: its wire form with ID 0 and
// its question section, which the answer must repeat.
type item struct {
	Query
	wire     []byte // ID 0
	framed   []byte // wire with a 2-byte length prefix (DoQ, DoT)
	question []byte
	url      string // the DoH GET URL, when the transport is DoH
}

func newItems(mix []Query) ([]item, error) {
	items := make([]item, len(mix))
	for i, q := range mix {
		if !q.Expected {
			return nil, fmt.Errorf("%w: no expected answer for %s (give RCODE ANSWERS in the mix, or --expect-from)", ErrConfig, q)
		}
		w, err := q.wire(0)
		if err != nil {
			return nil, err
		}
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(w)))
		items[i] = item{Query: q, wire: w, framed: append(framed, w...), question: w[12:]}
	}
	return items, nil
}

// check verifies a response to it sent with ID id: a response (QR) with
// that ID, one question equal to the query's, the expected rcode and
// number of answer records. Only the header and question are read, so
// the check costs little beside the server's work.
func (it *item) check(resp []byte, id uint16) error {
	bad := func(format string, a ...any) error {
		return &AnswerError{Query: it.Query, Reason: fmt.Sprintf(format, a...)}
	}
	if len(resp) < 12+len(it.question) {
		return bad("response of %d bytes", len(resp))
	}
	h := binary.BigEndian
	if got := h.Uint16(resp); got != id {
		return bad("ID %d, want %d", got, id)
	}
	flags := h.Uint16(resp[2:])
	if flags&0x8000 == 0 {
		return bad("QR not set")
	}
	if rc := int(flags & 0xf); rc != it.Rcode {
		return bad("rcode %s, want %s", dns.RcodeToString[rc], dns.RcodeToString[it.Rcode])
	}
	if qd := h.Uint16(resp[4:]); qd != 1 {
		return bad("%d questions", qd)
	}
	if an := int(h.Uint16(resp[6:])); an != it.Answers {
		return bad("%d answers, want %d", an, it.Answers)
	}
	if !bytes.Equal(resp[12:12+len(it.question)], it.question) {
		return bad("question section differs from the query's")
	}
	return nil
}

// expectFrom fills in the expected answers of the mix's queries that have
// none by asking a Do53 server over TCP (one query at a time, before the
// load starts).
func expectFrom(ctx context.Context, addr string, mix []Query) error {
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	for i := range mix {
		if mix[i].Expected {
			continue
		}
		m := new(dns.Msg)
		m.SetQuestion(mix[i].Name, mix[i].Type)
		r, _, err := c.ExchangeContext(ctx, m, addr)
		if err != nil {
			return fmt.Errorf("dnsload: expect-from %s: %s: %w", addr, mix[i], err)
		}
		mix[i].Rcode, mix[i].Answers, mix[i].Expected = r.Rcode, len(r.Answer), true
	}
	return nil
}
