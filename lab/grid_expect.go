package lab

import (
	"strings"

	"github.com/echlab/echlab/lab/adversary"
)

// Why texts shared by several cells.
const (
	whyNoFallback = "a compliant client fails closed: unless ECH was disabled by a connection authenticated for the public name, " +
		"it MUST NOT fall back to an unencrypted ClientHello (RFC 9849 §8.1.1)"
	whyGREASEHidesNothing = "GREASE hides nothing: the true name is in the clear SNI (RFC 9849 §6.2)"
	whyCollateral         = "collateral damage: a GREASE ClientHello carries the same extension, which is the point of GREASE " +
		"(RFC 9849 §6.2, §10.10.4 \"Do not stick out\")"
	whyHidden = "the true name is only inside the encrypted ClientHelloInner: an SNI rule cannot see it (RFC 9849 §10.1)"
	whyQUIC   = "; over QUIC the adversary reads the ClientHello from the Initials (their keys derive from the client's " +
		"DCID, RFC 9001 §5.2) and black-holes the flow (no RST to forge): the client times out, and echlab's HTTP/3 " +
		"client does not fall back to TCP"
)

// expected returns the outcomes the RFCs have a compliant client of the
// row's kind reach against the column, and the text saying so. A column
// of several policies is judged by the first one that touches the row.
func expected(row GridRow, col []adversary.Policy) ([]string, string) {
	for _, p := range col {
		if want, why, touched := expectOne(row, p); touched {
			return want, why
		}
	}
	want, why := control(row)
	if len(col) > 0 {
		why = "not touched by " + columnName(col) + ": " + why
	}
	return want, why
}

// control is the outcome with no adversary.
func control(row GridRow) ([]string, string) {
	if row.Client == GridClientGREASE {
		return []string{GridGREASE}, "no ECH config: GREASE, the name in the clear (RFC 9849 §6.2)"
	}
	return []string{GridECH}, "the HTTPS record's config: ECH accepted (RFC 9849 §6.1)"
}

// expectOne is one policy's effect on a row: touched false when the
// policy leaves the row alone.
func expectOne(row GridRow, p adversary.Policy) (want []string, why string, touched bool) {
	f := strings.Fields(p.String())
	kind, args := f[0], f[1:]
	arg := func(i int) string {
		if i < len(args) {
			return strings.TrimSuffix(strings.ToLower(args[i]), ".")
		}
		return ""
	}
	ech := row.Client != GridClientGREASE // has a config from DNS
	tcp := row.Client != GridClientH3
	do53 := row.DNS == DNSDo53
	noFallback := whyNoFallback
	if !tcp {
		noFallback += whyQUIC
	}
	switch kind {
	case "block-sni":
		switch {
		case nameMatches(arg(0), SecretName) && ech:
			return []string{GridECH}, whyHidden, true
		case nameMatches(arg(0), SecretName):
			return []string{GridFailed}, whyGREASEHidesNothing, true
		case nameMatches(arg(0), PublicName) && ech:
			return []string{GridFailed}, noFallback, true
		case nameMatches(arg(0), PublicName):
			return []string{GridGREASE}, "GREASE's SNI is the true name, not the public name: the rule lets it through", true
		}
	case "block-ech", "rst-after-hello":
		switch {
		case ech:
			return []string{GridFailed}, noFallback, true
		default:
			return []string{GridFailed}, whyCollateral, true
		}
	case "block-ech-public":
		switch {
		case !nameMatches(arg(0), PublicName):
			return nil, "", false
		case ech:
			return []string{GridFailed}, noFallback, true
		default:
			return []string{GridGREASE}, "GREASE's SNI is the true name, not the public name: the rule lets it through", true
		}
	case "block-ech-size":
		switch {
		case ech:
			return []string{GridECH, GridFailed}, "real ECH is blocked unless its payload length is one the censor takes for GREASE; " +
				"if blocked, " + noFallback, true
		default:
			return []string{GridGREASE, GridFailed}, "a GREASE payload as long as real ECH (RFC 9849 §6.2) is blocked with it: " +
				"collateral damage whenever its length is not on the censor's list", true
		}
	case "strip-ech", "drop-https-rr":
		what := "the ech SvcParam stripped"
		if kind == "drop-https-rr" {
			what = "the HTTPS record dropped"
		}
		switch {
		case !do53:
			return nil, "", false
		case row.Client == GridClientECH:
			return []string{GridFailed}, what + " on plaintext DNS (RFC 9849 §10.2): echlab fail-closed refuses to connect without a config " +
				"(RFC 9849 §6.1 would allow GREASE with the name in the clear)", true
		case row.Client == GridClientGREASE:
			return nil, "", false
		default:
			return []string{GridClear}, what + " on plaintext DNS: the downgrade works, the name goes in the clear " +
				"(RFC 9849 §10.2; an SVCB-optional client has seen no ech SvcParam, RFC 9848 §5.1); encrypted DNS is the defence", true
		}
	case "poison":
		switch {
		case !do53:
			return nil, "", false
		case nameMatches(arg(0), PublicName):
			return []string{GridFailed}, "an attacker controlling DNS can replace the address and block the connection (RFC 9849 §10.2): " +
				"here the address of the HTTPS record's TargetName, " + PublicName + ", which every client connects to", true
		case nameMatches(arg(0), SecretName):
			want, _ := control(row)
			return want, "the clients connect to the HTTPS record's TargetName (" + PublicName + "): they never ask the A record of " +
				SecretName + ", so poisoning it misses them", true
		}
	case "block-doh":
		if row.DNS != DNSDoH {
			return nil, "", false
		}
		return []string{GridFailed}, "SVCB resolution prevented: the client cannot learn the config and abandons " +
			"(RFC 9848 §8, RFC 9460 §3.1); echlab never falls back to plaintext DNS", true
	case "drop-udp":
		if tcp {
			return nil, "", false
		}
		return []string{GridFailed}, "QUIC black-holed: echlab's HTTP/3 client does not fall back to TCP (a browser would)", true
	}
	return nil, "", false
}

// nameMatches reports whether a policy's NAME (exact or "*.suffix")
// covers name.
func nameMatches(pattern, name string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(name, "."+suffix)
	}
	return pattern == name
}
