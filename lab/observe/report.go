package observe

import (
	"crypto/tls"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Where an observer learned a name.
const (
	SourceDNSQuery = "dns-query" // a plain DNS question (Do53)
	SourceSNI      = "sni"       // the (outer) server_name of a ClientHello
	SourceNothing  = "nothing"   // only inside ECH or ESNI: hidden from the observer
	// SourceInnerInClear is the server_name of a ClientHelloInner sent in
	// the clear (a split-mode front's hop to its backend): the true name.
	SourceInnerInClear = "inner-in-clear"
)

// ScenarioSummary is the privacy summary of one scenario's flows.
type ScenarioSummary struct {
	Scenario    string         `json:"scenario"`
	Flows       int            `json:"flows"`
	TLSFlows    int            `json:"tls_flows"`    // flows with a ClientHello
	ECHFlows    int            `json:"ech_flows"`    // ClientHellos with an outer ECH extension
	ECHAccepted int            `json:"ech_accepted"` // verified with keys
	DNSQueries  int            `json:"dns_queries"`  // plain DNS questions seen
	Names       []NameExposure `json:"names"`

	// InnerInClear counts the ClientHelloInners sent in the clear (flows
	// with ECHInnerInClear): each hop shows the true name to an observer.
	InnerInClear int `json:"ech_inner_in_clear"`

	ESNIFlows int `json:"esni_flows"` // ClientHellos with a legacy encrypted_server_name
	// ALPN lists the protocols offered in the clear (ESNI hid none);
	// HiddenALPN, with keys, those only in inner ClientHellos (ECH).
	ALPN       []string `json:"alpn_in_clear"`
	HiddenALPN []string `json:"alpn_hidden,omitempty"`
}

// NameExposure is one name and where the observer saw it.
type NameExposure struct {
	Name   string `json:"name"`
	Source string `json:"source"` // SourceDNSQuery, SourceSNI, SourceInnerInClear or SourceNothing
	Flows  int    `json:"flows"`
}

// summarizer groups flows by scenario, one flow at a time, and lists the
// names each exposed (result).
type summarizer struct {
	byName map[string]*ScenarioSummary
	seen   map[string]map[[2]string]int
	order  []string
}

// add counts one flow in its scenario's summary.
func (z *summarizer) add(f *Flow) {
	if z.byName == nil {
		z.byName, z.seen = map[string]*ScenarioSummary{}, map[string]map[[2]string]int{}
	}
	s := z.byName[f.Scenario]
	if s == nil {
		s = &ScenarioSummary{Scenario: f.Scenario}
		z.byName[f.Scenario], z.seen[f.Scenario] = s, map[[2]string]int{}
		z.order = append(z.order, f.Scenario)
	}
	s.add(f, z.seen[f.Scenario])
}

// result is the summaries, in the order their scenarios first appeared.
func (z *summarizer) result() []ScenarioSummary {
	out := make([]ScenarioSummary, 0, len(z.order))
	for _, name := range z.order {
		s := z.byName[name]
		exposed := map[string]bool{}
		for k := range z.seen[name] {
			if k[1] != SourceNothing {
				exposed[k[0]] = true
			}
		}
		for k, n := range z.seen[name] {
			if k[1] == SourceNothing && exposed[k[0]] {
				continue // an observer learned it elsewhere
			}
			s.Names = append(s.Names, NameExposure{Name: k[0], Source: k[1], Flows: n})
		}
		sort.Slice(s.Names, func(i, j int) bool {
			a, b := s.Names[i], s.Names[j]
			return a.Name < b.Name || a.Name == b.Name && a.Source < b.Source
		})
		out = append(out, *s)
	}
	return out
}

func (s *ScenarioSummary) add(f *Flow, seen map[[2]string]int) {
	s.Flows++
	if f.ClientHelloLen > 0 {
		s.TLSFlows++
	}
	switch f.ECH {
	case ECHNone, ECHESNI:
	case ECHInnerClear:
		s.InnerInClear++
	default:
		s.ECHFlows++
	}
	if f.ECHAccepted != nil && *f.ECHAccepted {
		s.ECHAccepted++
	}
	s.addALPN(f)
	if f.SNI != "" {
		src := SourceSNI
		if f.ECHInnerInClear {
			src = SourceInnerInClear
		}
		seen[[2]string{f.SNI, src}]++
	}
	if f.InnerSNI != "" && f.InnerSNI != f.SNI {
		seen[[2]string{f.InnerSNI, SourceNothing}]++
	}
	for _, m := range f.DNS {
		if !m.Response {
			s.DNSQueries++
			seen[[2]string{strings.TrimSuffix(m.Name, "."), SourceDNSQuery}]++
		}
	}
}

// WriteJSON writes one JSON object per flow (JSON lines).
func WriteJSON(w io.Writer, r *Report) error {
	j := NewFlowJSON(w)
	for _, f := range r.Flows {
		if err := j.Write(f); err != nil {
			return err
		}
	}
	return nil
}

// csvHeader are the columns of WriteCSV.
var csvHeader = append([]string{"id", "scenario", "start", "client", "server", "transport", "service", "sni", "alpn",
	"ech", "ech_config_id", "ech_kdf", "ech_aead", "ech_enc_len", "ech_payload_len", "inner_sni", "inner_alpn",
	"ech_accepted", "ech_inner_in_clear", "hrr", "server_version", "server_cipher", "server_group", "client_hello_len", "record_len",
	"ja4", "keylog", "dns", "warnings"}, append(csvESNIHeader, csvAdversaryHeader...)...)

// WriteCSV writes a header and one row per flow.
func WriteCSV(w io.Writer, r *Report) error {
	c := NewFlowCSV(w)
	for _, f := range r.Flows {
		if err := c.Write(f); err != nil {
			return err
		}
	}
	return c.Flush()
}

// innerInClearNotes are the lines under the privacy summary for the
// scenarios with ClientHelloInners sent in the clear.
func innerInClearNotes(r *Report) []string {
	var out []string
	for _, s := range r.Summary {
		if s.InnerInClear == 0 {
			continue
		}
		var names []string
		for _, n := range s.Names {
			if n.Source == SourceInnerInClear {
				names = append(names, n.Name)
			}
		}
		out = append(out, fmt.Sprintf("%s: %d ClientHelloInner(s) sent in the clear (ECH type inner, a split front's hop to its backend): "+
			"the true name %s is readable on that hop", s.Scenario, s.InnerInClear, dash(strings.Join(names, ", "))))
	}
	return out
}

// WriteMarkdown writes a Markdown report: the capture, one table row per
// flow, the privacy summary and the warnings.
func WriteMarkdown(w io.Writer, r *Report) error { return WriteMarkdownLevel(w, r, 1) }

// WriteMarkdownLevel is WriteMarkdown with its title at heading level and its
// sections one level below, so that another document (echlab run's
// report.md) can nest it under its own title.
func WriteMarkdownLevel(w io.Writer, r *Report, level int) error {
	h1, h2 := strings.Repeat("#", level), strings.Repeat("#", level+1)
	var b strings.Builder
	fmt.Fprintf(&b, "%s echlab compare\n\nCapture: %s, %s, %d packets, %d flows.\n\n%s Flows\n\n", h1, r.Format, captureKind(r), r.Packets, r.flowCount(), h2)
	b.WriteString("| # | scenario | client | server | transport | service | SNI / DNS | ALPN | ECH | inner SNI | accepted | HRR | server | CH len | JA4 |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.Flows {
		what := f.SNI
		if len(f.DNS) > 0 {
			what = dnsSummary(f.DNS)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", f.ID, MarkdownCell(f.Scenario),
			f.Client, f.Server, f.Transport, f.Service, MarkdownCell(what), MarkdownCell(strings.Join(f.ALPN, ", ")), MarkdownCell(echCell(f)),
			MarkdownCell(f.InnerSNI), accepted(f), yesNo(f.HRR), MarkdownCell(serverCell(f)), intOrEmpty(f.ClientHelloLen), MarkdownCell(f.JA4))
	}
	if note := unlistedNote(r); note != "" {
		b.WriteString("\n" + MarkdownCell(note) + "\n")
	}
	b.WriteString("\n" + h2 + " Privacy summary\n\nWhat an on-path observer learned, per scenario, and from where (`nothing` means the name travelled only inside ECH or ESNI; " +
		"`inner-in-clear` means it was read from a ClientHelloInner sent in the clear, as a split-mode front forwards it to its backend). " +
		"ALPN in clear: the protocols the observer read (ESNI never hid ALPN; ECH hides the inner ClientHello's, `hidden` lists those seen only with keys).\n\n")
	b.WriteString("| scenario | flows | TLS | ECH | ESNI | accepted | DNS queries | ALPN in clear | name | learned from | flows |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range r.Summary {
		head := fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %d | %s ", MarkdownCell(s.Scenario), s.Flows, s.TLSFlows, s.ECHFlows, s.ESNIFlows,
			s.ECHAccepted, s.DNSQueries, MarkdownCell(alpnCell(s)))
		if len(s.Names) == 0 {
			b.WriteString(head + "| | | |\n")
		}
		for i, n := range s.Names {
			if i == 0 {
				b.WriteString(head)
			} else {
				b.WriteString("| | | | | | | | ")
			}
			fmt.Fprintf(&b, "| %s | %s | %d |\n", MarkdownCell(n.Name), n.Source, n.Flows)
		}
	}
	if notes := innerInClearNotes(r); len(notes) > 0 {
		b.WriteString("\n")
		for _, note := range notes {
			fmt.Fprintf(&b, "- **%s**\n", MarkdownCell(note))
		}
	}
	writeAdversaryMarkdown(&b, r, h2)
	if len(r.Warnings) > 0 || anyFlowWarnings(r) {
		b.WriteString("\n" + h2 + " Warnings\n\n")
		for _, s := range r.Warnings {
			fmt.Fprintf(&b, "- %s\n", MarkdownCell(s))
		}
		for _, f := range r.Flows {
			for _, s := range f.Warnings {
				fmt.Fprintf(&b, "- flow %d: %s\n", f.ID, MarkdownCell(s))
			}
		}
		if r.UnlistedWarnings > 0 {
			fmt.Fprintf(&b, "- %d more on the flows not listed\n", r.UnlistedWarnings)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func anyFlowWarnings(r *Report) bool {
	if r.UnlistedWarnings > 0 {
		return true
	}
	for _, f := range r.Flows {
		if len(f.Warnings) > 0 {
			return true
		}
	}
	return false
}

func captureKind(r *Report) string {
	if r.Synthesized {
		return "synthesized by echlab's recorder (not a packet socket)"
	}
	return "packet capture"
}

func firstTime(r *Report) time.Time {
	if len(r.Flows) == 0 {
		return time.Time{}
	}
	return r.Flows[0].Start
}

func echCell(f *Flow) string {
	if f.ECH == ECHNone {
		return ""
	}
	if f.ECH == ECHESNI {
		return esniCell(f)
	}
	if f.ECHInnerInClear {
		return "inner (in clear)"
	}
	s := f.ECH
	if f.ECHConfigID != nil {
		s += fmt.Sprintf(" id=%d", *f.ECHConfigID)
	}
	return s + fmt.Sprintf(" kdf=%#04x aead=%#04x enc=%d payload=%d", f.ECHKDF, f.ECHAEAD, f.ECHEncLen, f.ECHPayloadLen)
}

func serverCell(f *Flow) string {
	if f.ServerVersion == 0 && f.ServerGroup == 0 {
		return ""
	}
	return strings.Trim(VersionName(f.ServerVersion)+" "+CipherName(f.ServerCipher)+" "+GroupName(f.ServerGroup), " ")
}

func configID(f *Flow) string {
	if f.ECHConfigID == nil {
		return ""
	}
	return strconv.Itoa(int(*f.ECHConfigID))
}

func accepted(f *Flow) string {
	if f.ECHAccepted == nil {
		return ""
	}
	return yesNo(*f.ECHAccepted)
}

func dnsSummary(msgs []DNSMessage) string {
	var parts []string
	for _, m := range msgs {
		if !m.Response {
			parts = append(parts, "Q "+m.Name+" "+m.Type)
			continue
		}
		s := "R " + m.Name + " " + m.Type + " " + m.Rcode
		if m.HasECH {
			s += " ech="
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// VersionName is the name of a TLS version, "" for 0.
func VersionName(v uint16) string {
	if v == 0 {
		return ""
	}
	return tls.VersionName(v)
}

// CipherName is the name of a TLS cipher suite, "" for 0.
func CipherName(c uint16) string {
	if c == 0 {
		return ""
	}
	if name, ok := cipherNames[c]; ok {
		return name
	}
	return tls.CipherSuiteName(c)
}

// cipherNames are tls.CipherSuiteName's names of the suites crypto/tls
// knows (it builds its whole list on every call).
var cipherNames = func() map[uint16]string {
	m := map[uint16]string{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		m[s.ID] = s.Name
	}
	return m
}()

// GroupName is the name of a TLS key exchange group, "" for 0.
func GroupName(g uint16) string {
	if g == 0 {
		return ""
	}
	return tls.CurveID(g).String()
}

func hexOrEmpty(v uint16) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("%#04x", v)
}

func intOrEmpty(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// MarkdownCell escapes the characters that would break a Markdown table cell.
func MarkdownCell(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ").Replace(s)
}
