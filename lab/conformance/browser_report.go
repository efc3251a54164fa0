package conformance

import (
	"fmt"
	"strings"
)

// Line is the case's row in one line, each cell with its outcome (and a
// browser's page-load time): "baseline: echlab pass (ech), chromium pass
// (ech, 1.2s)".
func (cr CaseResult) Line() string {
	parts := make([]string, len(cr.Cells))
	for i, c := range cr.Cells {
		what := string(c.Evidence.Outcome)
		if b := c.Evidence.Browser; b != nil {
			what += fmt.Sprintf(", %.1fs", b.Duration.Seconds())
		}
		parts[i] = fmt.Sprintf("%s %s (%s)", c.Client, c.Grade, what)
	}
	return cr.Case.Name + ": " + strings.Join(parts, ", ")
}
