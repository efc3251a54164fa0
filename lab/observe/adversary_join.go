package observe

import (
	"strings"
	"time"
)

// FlowAdversary is what an on-path adversary did to a flow, from its
// decision log (CompareOptions.Adversary): the strongest action of the
// decisions joined to the flow (rst, rst-after-reply, drop, rewrite,
// pass, in that order), with that decision's policy, grid column and row
// and detail. Empty when no log was given or no decision joined.
type FlowAdversary struct {
	AdversaryAction string `json:"adversary_action,omitempty"`
	AdversaryPolicy string `json:"adversary_policy,omitempty"` // "" for a pass no policy matched
	AdversaryColumn string `json:"adversary_column,omitempty"`
	AdversaryRow    string `json:"adversary_row,omitempty"`
	AdversaryDetail string `json:"adversary_detail,omitempty"`

	adv *AdversaryDecision // the decision shown
}

// Blocked reports whether the adversary stopped the flow: dropped or
// reset it.
func (a FlowAdversary) Blocked() bool {
	switch a.AdversaryAction {
	case AdversaryDrop, AdversaryRST, AdversaryRSTAfterReply:
		return true
	}
	return false
}

// advSlack is how far outside a flow's first and last packet a decision
// about it may be timed: the relay decides after the capture saw the
// client's first packet and before it saw the relay's answer, but the two
// clocks are read at different points.
const advSlack = time.Second

// advJoin joins a decision log to the flows of one Compare: each
// decision to the first flow (in the order Compare labels them) of the
// same client address, port and protocol that it fits (see fits), and
// sums up what the adversary did.
type advJoin struct {
	log     *AdversaryLog
	matched []bool
	sum     adversarySummarizer
}

func newAdvJoin(l *AdversaryLog) *advJoin {
	if l == nil {
		return nil
	}
	j := &advJoin{log: l, matched: make([]bool, len(l.Decisions))}
	j.sum.start(l)
	return j
}

// join marks f with the strongest of the decisions that fit it.
func (j *advJoin) join(f *Flow) {
	if j == nil {
		return
	}
	var best *AdversaryDecision
	for _, i := range j.log.byClient[newAdvKey(f.proto(), f.Client)] {
		d := &j.log.Decisions[i]
		if j.matched[i] || !d.fits(f) {
			continue
		}
		j.matched[i] = true
		if best == nil || adversaryRank[d.Action] > adversaryRank[best.Action] {
			best = d
		}
	}
	if best != nil {
		f.FlowAdversary = FlowAdversary{AdversaryAction: best.Action, AdversaryPolicy: best.Policy, AdversaryColumn: best.Column,
			AdversaryRow: best.Row, AdversaryDetail: best.Detail, adv: best}
	}
}

// fits reports whether a decision about f's client endpoint can be about
// f: timed within the flow (give or take advSlack), about the SNI of its
// ClientHello if both have one, about one of its DNS questions if the
// decision names one.
func (d *AdversaryDecision) fits(f *Flow) bool {
	if !d.Time.IsZero() && (d.Time.Before(f.Start.Add(-advSlack)) || !f.end.IsZero() && d.Time.After(f.end.Add(advSlack))) {
		return false
	}
	if d.SNI != "" && f.ClientHelloLen > 0 && canonical(d.SNI) != canonical(f.SNI) {
		return false
	}
	if d.QName == "" {
		return true
	}
	for _, m := range f.DNS {
		if canonical(m.Name) == canonical(d.QName) && (d.QType == "" || strings.EqualFold(m.Type, d.QType)) {
			return true
		}
	}
	return false
}

// canonical is a name in lower case without a trailing dot.
func canonical(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// result is the summary, once every flow is joined.
func (j *advJoin) result() *AdversarySummary {
	if j == nil {
		return nil
	}
	return j.sum.result(j.matched)
}
