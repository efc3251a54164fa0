package observe

import "strings"

// AdversarySummary is what an on-path adversary did, from its decision
// log joined to the capture's flows (Report.Adversary).
type AdversarySummary struct {
	Log       string `json:"log"`       // the log's file name
	Decisions int    `json:"decisions"` // lines in the log
	Joined    int    `json:"joined"`    // decisions joined to a flow
	// Unmatched counts the decisions that joined no flow of the capture,
	// UnmatchedLines gives the log lines of the first maxUnmatchedLines.
	Unmatched      int   `json:"unmatched"`
	UnmatchedLines []int `json:"unmatched_lines,omitempty"`
	// Counts are, per column, policy and action (in the order the log
	// first has them), the decisions and the flows whose strongest
	// decision it was.
	Counts []AdversaryCount `json:"counts"`
	// Acted are the flows it blocked or rewrote, the first maxActed;
	// MoreActed counts the others.
	Acted     []AdversaryActed `json:"acted,omitempty"`
	MoreActed int              `json:"more_acted,omitempty"`
}

// AdversaryCount is how often one policy of one column took one action.
type AdversaryCount struct {
	Column    string `json:"column,omitempty"`
	Policy    string `json:"policy,omitempty"` // "" for passes no policy matched
	Action    string `json:"action"`
	Decisions int    `json:"decisions"`
	Flows     int    `json:"flows"`
}

// AdversaryActed is a flow the adversary blocked or rewrote.
type AdversaryActed struct {
	Flow      int    `json:"flow"` // Flow.ID
	Column    string `json:"column,omitempty"`
	Row       string `json:"row,omitempty"`
	Policy    string `json:"policy"`
	Action    string `json:"action"`
	Transport string `json:"transport"`
	Name      string `json:"name,omitempty"` // the SNI, or the DNS question
	Detail    string `json:"detail,omitempty"`
}

// Bounds of the summary's lists.
const (
	maxActed          = 200
	maxUnmatchedLines = 10
)

// adversarySummarizer counts the decisions of a log and, one numbered
// flow at a time, the flows they decided.
type adversarySummarizer struct {
	log    *AdversaryLog
	counts []AdversaryCount
	index  map[[3]string]int // column, policy, action → counts
	acted  []AdversaryActed
	more   int
}

func countKey(column, policy, action string) [3]string { return [3]string{column, policy, action} }

// start counts the log's decisions.
func (z *adversarySummarizer) start(l *AdversaryLog) {
	z.log, z.index = l, map[[3]string]int{}
	for _, d := range l.Decisions {
		k := countKey(d.Column, d.Policy, d.Action)
		i, ok := z.index[k]
		if !ok {
			i = len(z.counts)
			z.index[k] = i
			z.counts = append(z.counts, AdversaryCount{Column: d.Column, Policy: d.Policy, Action: d.Action})
		}
		z.counts[i].Decisions++
	}
}

// add counts a numbered flow under its strongest decision, and lists it
// when that blocked or rewrote it.
func (z *adversarySummarizer) add(f *Flow) {
	d := f.adv
	if d == nil {
		return
	}
	z.counts[z.index[countKey(d.Column, d.Policy, d.Action)]].Flows++
	if d.Action == AdversaryPass {
		return
	}
	if len(z.acted) >= maxActed {
		z.more++
		return
	}
	name := f.SNI
	if name == "" && d.QName != "" {
		name = strings.TrimSpace(d.QName + " " + d.QType)
	}
	if name == "" {
		name = d.SNI
	}
	z.acted = append(z.acted, AdversaryActed{Flow: f.ID, Column: d.Column, Row: d.Row, Policy: d.Policy, Action: d.Action,
		Transport: f.Transport, Name: name, Detail: d.Detail})
}

// result is the summary; matched says which decisions joined a flow.
func (z *adversarySummarizer) result(matched []bool) *AdversarySummary {
	s := &AdversarySummary{Log: z.log.File, Decisions: len(z.log.Decisions), Counts: z.counts, Acted: z.acted, MoreActed: z.more}
	for i, m := range matched {
		if m {
			s.Joined++
			continue
		}
		s.Unmatched++
		if len(s.UnmatchedLines) < maxUnmatchedLines {
			s.UnmatchedLines = append(s.UnmatchedLines, z.log.Decisions[i].Line)
		}
	}
	if s.Counts == nil {
		s.Counts = []AdversaryCount{}
	}
	return s
}
