package lab

import (
	"fmt"
	"slices"
	"strings"
)

// plan expands a selection into the cases to run, in order: scenarios
// (nil means every Default one; h3 adds the WithH3 ones), transports (nil
// means the default rule: all five for EveryTransport scenarios, DoH for
// the others; "all" means all five for every scenario; a scenario with a
// pinned Transport uses only that one), repeat times each (at least once).
func plan(scenarios, transports []string, repeat int, h3 bool) ([]Case, error) {
	sel, err := selectScenarios(scenarios, h3)
	if err != nil {
		return nil, err
	}
	tr, err := selectTransports(transports)
	if err != nil {
		return nil, err
	}
	repeat = max(repeat, 1)
	var cases []Case
	for _, s := range sel {
		ts := tr
		switch {
		case s.Transport != "":
			ts = []string{s.Transport}
		case tr == nil && s.EveryTransport:
			ts = AllTransports
		case tr == nil:
			ts = []string{DNSDoH}
		}
		for _, t := range ts {
			for r := range repeat {
				cases = append(cases, expand(s, t, r+1)...)
			}
		}
	}
	return cases, nil
}

func selectScenarios(names []string, h3 bool) ([]Scenario, error) {
	var sel []Scenario
	if len(names) == 0 {
		for _, s := range Scenarios {
			if s.Default && !s.PlayOnly {
				sel = append(sel, s)
			}
		}
	}
	for _, n := range names {
		s, err := LookupScenario(strings.TrimSpace(n))
		if err != nil {
			return nil, err
		}
		if s.PlayOnly {
			return nil, fmt.Errorf("%w %q: only echlab play runs it (echlab run knows: %s)", ErrScenario, s.Name, ScenarioNames())
		}
		if !slices.ContainsFunc(sel, func(x Scenario) bool { return x.Name == s.Name }) {
			sel = append(sel, s)
		}
	}
	for _, s := range Scenarios {
		if h3 && s.WithH3 && !slices.ContainsFunc(sel, func(x Scenario) bool { return x.Name == s.Name }) {
			sel = append(sel, s)
		}
	}
	return sel, nil
}

func selectTransports(names []string) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	var out []string
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "all" {
			return AllTransports, nil
		}
		if !slices.Contains(AllTransports, n) {
			return nil, fmt.Errorf("%w: DNS transport %q (known: %s, all)", ErrScenario, n, strings.Join(AllTransports, ","))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// expand makes the cases of one scenario, transport and repeat: one,
// except for a Sweep (every sweep name, padding on and off).
func expand(s Scenario, transport string, repeat int) []Case {
	base := Case{Scenario: s.Name, Transport: transport, Repeat: repeat, Padding: s.Client.Padding}
	if s.Client.Sweep {
		var out []Case
		for _, name := range SweepNames() {
			for _, p := range []string{PaddingDefault, PaddingNone} {
				c := base
				c.InnerName, c.Padding = name, p
				out = append(out, c)
			}
		}
		return out
	}
	return []Case{base}
}

// Padding policies of the padding scenarios.
const (
	PaddingDefault = "default"
	PaddingNone    = "none"
)

// SweepNames returns the inner names of padding-sweep: one name of each
// length 5, 10, …, 60 characters, all under lab.test from length 10 on.
func SweepNames() []string {
	var out []string
	for n := 5; n <= 60; n += 5 {
		if n < 10 {
			out = append(out, strings.Repeat("s", n-2)+".t") // "sss.t"
			continue
		}
		out = append(out, "s"+strings.Repeat("w", n-10)+".lab.test")
	}
	return out
}
