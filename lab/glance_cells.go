package lab

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/echlab/echlab/lab/observe"
)

// The cells of the glance table, narrow and wide.

func skippedDash(r Row, s string) string {
	if r.Cases > 0 && r.Skipped == r.Cases {
		return "-"
	}
	return s
}

// list joins a cell's values, abbreviating long lists (padding-sweep's
// inner names) to the first two and a count.
func list(v []string) string {
	switch {
	case len(v) == 0:
		return "-"
	case len(v) > 3:
		return fmt.Sprintf("%s %s … (%d names)", v[0], v[1], len(v))
	}
	return strings.Join(v, " ")
}

// short is a narrow cell of values: the first and how many more.
func short(v []string) string {
	switch len(v) {
	case 0:
		return "-"
	case 1:
		return v[0]
	}
	return fmt.Sprintf("%s +%d", v[0], len(v)-1)
}

// echKinds is the ECH cell: the flows' ECH kinds, "grease?" for
// grease-or-unknown-key when narrow, and "+HRR".
func echKinds(r Row, narrow bool) string {
	kinds := slices.Clone(r.ECH)
	for i, k := range kinds {
		if narrow && k == observe.ECHGreaseOrKey {
			kinds[i] = "grease?"
		}
	}
	out := list(kinds)
	if narrow {
		out = strings.Join(kinds, ",")
	}
	if r.HRR {
		out += " +HRR"
	}
	return cmp.Or(out, "-")
}

// accCell is "accepted/verified" flows, or "-" with none verified.
func accCell(r Row) string {
	if r.VerifiedFlows == 0 {
		return "-"
	}
	return fmt.Sprintf("%d/%d", r.AcceptedFlows, r.VerifiedFlows)
}

// msCell is the median handshake time, with n when several runs made it.
func msCell(r Row) string {
	switch r.HandshakeN {
	case 0:
		return "-"
	case 1:
		return fmt.Sprintf("%.1f", r.HandshakeMedianMS)
	}
	return fmt.Sprintf("%.1f n=%d", r.HandshakeMedianMS, r.HandshakeN)
}

// chCell is the ClientHello size, or its range when it varied.
func chCell(r Row) string {
	switch {
	case r.ClientHelloBytes == 0:
		return "-"
	case r.ClientHelloMin > 0 && r.ClientHelloMin < r.ClientHelloBytes:
		return fmt.Sprintf("%d–%d", r.ClientHelloMin, r.ClientHelloBytes)
	}
	return fmt.Sprint(r.ClientHelloBytes)
}

// runsCell counts the cases that did what the scenario expects.
func runsCell(r Row) string {
	if r.Cases > 0 && r.Skipped == r.Cases {
		return "skipped"
	}
	return fmt.Sprintf("%d/%d", r.OK, r.Cases)
}

// alpnShort is the narrow ALPN cell: the protocols in the clear, then
// the hidden ones in brackets ("none [h2]").
func alpnShort(r Row) string {
	out := strings.Join(r.ALPN, ",")
	if len(r.HiddenALPN) > 0 {
		out = cmp.Or(out, "none") + " [" + strings.Join(r.HiddenALPN, ",") + "]"
	}
	return cmp.Or(out, "-")
}

// alpnSeen is the ALPN SEEN cell of a row: the protocols read in the
// clear and, with keys, "(hidden: h2)".
func alpnSeen(r Row) string {
	out := list(r.ALPN)
	if len(r.HiddenALPN) == 0 {
		return out
	}
	if len(r.ALPN) == 0 {
		out = "none"
	}
	return out + " (hidden: " + strings.Join(r.HiddenALPN, ",") + ")"
}

// dash stands in for an empty cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// intOrEmpty is n in decimal, or "" for 0.
func intOrEmpty(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n)
}
