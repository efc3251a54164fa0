package lab

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// WriteGlance prints the comparison table and one verdict per row.
func WriteGlance(w io.Writer, rows []Row, capture string) error {
	fmt.Fprintf(w, "What an on-path observer learned (%s capture):\n\n", capture)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tDNS\tOBSERVER SAW SNI\tNAME IN DNS?\tECH\tINNER (WITH KEYS)\tACCEPTED\tALPN SEEN\tHANDSHAKE MS\tCH BYTES\tRUNS")
	for _, r := range rows {
		inDNS := "no"
		if len(r.DNSNames) > 0 {
			inDNS = "yes: " + strings.Join(r.DNSNames, " ")
		}
		runs := fmt.Sprintf("%d/%d ok", r.OK, r.Cases)
		if r.Skipped == r.Cases {
			runs, inDNS = "skipped", "-"
		}
		echCol := list(r.ECH)
		if r.HRR {
			echCol += " +HRR"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Scenario, r.Transport, list(r.SNI), inDNS,
			echCol, list(r.InnerSNI), dash(r.Accepted), alpnSeen(r), msCell(r.HandshakeMS), dash(intOrEmpty(r.ClientHelloBytes)), runs)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "%s %s\n", map[bool]string{true: "✗", false: "•"}[len(r.Leaked) > 0], r.Verdict)
	}
	return nil
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

func msCell(ms float64) string {
	if ms == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", ms)
}

// verdict is the one-sentence reading of a row.
func (r *Row) verdict() string {
	who := r.Scenario
	if r.Transport != "" {
		who += " over " + r.Transport
	}
	if r.Skipped == r.Cases {
		return who + ": " + r.Skip
	}
	if len(r.Leaked) > 0 {
		var where []string
		if slices.ContainsFunc(r.Leaked, func(l string) bool { return slices.Contains(r.SNI, l) }) {
			where = append(where, "SNI")
		}
		var qs []string
		for _, n := range r.DNSNames {
			if slices.Contains(r.Leaked, n) || leakedOwner(n, r.Leaked) {
				qs = append(qs, n)
			}
		}
		if len(qs) > 0 {
			where = append(where, "DNS query ("+strings.Join(qs, ", ")+")")
		}
		return fmt.Sprintf("%s: %s leaked in %s", who, strings.Join(r.Leaked, ", "), strings.Join(where, " and "))
	}
	if len(r.SNI) == 0 {
		return who + ": observer learned no name"
	}
	return fmt.Sprintf("%s: observer learned only %s", who, strings.Join(r.SNI, ", "))
}

// echALPNNote adds to the verdict of a row with real ECH what became of
// the ALPN: hidden with the name, or copied into the ClientHelloOuter.
func (r *Row) echALPNNote() string {
	if r.Skipped == r.Cases || !slices.Contains(r.ECH, ECHReal) {
		return ""
	}
	switch {
	case len(r.ALPN) > 0 && strings.HasPrefix(r.Scenario, "padding-"):
		return "; ALPN in clear (" + strings.Join(r.ALPN, ", ") + "): ech.Seal copies crypto/tls's ALPN into the outer ClientHello"
	case len(r.ALPN) > 0:
		return "; ALPN in clear (" + strings.Join(r.ALPN, ", ") + "): Go's crypto/tls copies it into the outer ClientHello"
	case len(r.HiddenALPN) > 0:
		return "; ECH hid the ALPN too (" + strings.Join(r.HiddenALPN, ", ") + " only inside the inner ClientHello)"
	}
	return ""
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

// leakedOwner reports whether a DNS name (e.g. _443._https.secret.lab.test)
// is about one of the leaked names.
func leakedOwner(name string, leaked []string) bool {
	for _, l := range leaked {
		if strings.HasSuffix(name, "."+l) {
			return true
		}
	}
	return false
}
