package adversary

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/echlab/echlab/lab/capture"
)

// parseVerdict reads a block-* policy's action word.
func parseVerdict(s string) (capture.Verdict, bool) {
	switch strings.ToLower(s) {
	case "drop":
		return capture.Drop, true
	case "rst":
		return capture.Reset, true
	}
	return capture.Pass, false
}

// fillName reads the NAME of block-sni and block-ech-public.
func fillName(p *Policy, args []string) string {
	n, ok := parseName(args[0])
	if !ok {
		return "bad NAME " + strconv.Quote(args[0]) + ": want a host name or *.suffix"
	}
	p.Name = n
	return ""
}

// parseName checks a host name (letters, digits, '-' and '_' in labels of
// 1 to 63 bytes) or "*." and one, and returns it in lower case without a
// trailing dot.
func parseName(s string) (string, bool) {
	n := strings.ToLower(strings.TrimSuffix(s, "."))
	rest := strings.TrimPrefix(n, "*.")
	if rest == "" || len(n) > 253 {
		return "", false
	}
	for label := range strings.SplitSeq(rest, ".") {
		if label == "" || len(label) > 63 {
			return "", false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
	}
	return n, true
}

// nameMatches reports whether name (any case, trailing dot or not) is
// pattern, or lies under its suffix when pattern is "*.suffix".
func nameMatches(pattern, name string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(name, "."+suffix)
	}
	return name != "" && name == pattern
}

// fillSizes reads block-ech-size's SIZES, or takes GreaseSizes.
func fillSizes(p *Policy, args []string) string {
	p.Sizes = slices.Clone(GreaseSizes)
	if len(args) == 0 {
		return ""
	}
	var sizes []int
	for s := range strings.SplitSeq(args[0], ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 0xffff {
			return "bad SIZES " + strconv.Quote(args[0]) + ": want comma-separated payload lengths from 1 to 65535"
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	p.Sizes = slices.Compact(sizes)
	return ""
}

// joinInts is the inverse of fillSizes' list.
func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// fillPoison reads poison's NAME and ADDR.
func fillPoison(p *Policy, args []string) string {
	if reason := fillName(p, args); reason != "" {
		return reason
	}
	a, err := netip.ParseAddr(args[1])
	if err != nil || a.Zone() != "" {
		return "bad ADDR " + strconv.Quote(args[1]) + ": want an IPv4 or IPv6 address"
	}
	p.Addr = a.Unmap()
	return ""
}

// fillDoHTarget reads block-doh's optional address, IP:port or SNI.
func fillDoHTarget(p *Policy, args []string) string {
	if len(args) == 0 {
		return ""
	}
	s := args[0]
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 && ap.Addr().Zone() == "" {
		p.Addr, p.Port = ap.Addr().Unmap(), ap.Port()
		return ""
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		p.Addr = a.Unmap()
		return ""
	}
	if looksLikeAddr(s) {
		return "bad ADDR " + strconv.Quote(s) + ": want an IP address or IP:PORT (port 1 to 65535)"
	}
	if n, ok := parseName(s); ok {
		p.Name = n
		return ""
	}
	return "bad NAME " + strconv.Quote(s) + ": want an IP address, IP:PORT or a host name"
}

// looksLikeAddr reports whether s was meant as an address: it has a
// colon or brackets, or only digits and dots.
func looksLikeAddr(s string) bool {
	if strings.ContainsAny(s, ":[]") {
		return true
	}
	return strings.Trim(s, "0123456789.") == ""
}

// fillPort reads drop-udp's optional PORT.
func fillPort(p *Policy, args []string) string {
	p.Port = HTTPSPort
	if len(args) == 0 {
		return ""
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 || n > 0xffff {
		return "bad PORT " + strconv.Quote(args[0]) + ": want 1 to 65535"
	}
	p.Port = uint16(n)
	return ""
}
