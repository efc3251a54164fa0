package interop

import (
	"github.com/echlab/echlab/lab/adversary"
)

// Why texts of the expectations.
const (
	whyControl    = "the HTTPS record's config: ECH accepted (RFC 9849 §6.1)"
	whyNoFallback = "a compliant client fails closed: unless ECH was disabled by a connection authenticated for the public name, " +
		"it MUST NOT fall back to an unencrypted ClientHello (RFC 9849 §8.1.1); GREASE on DoH connections is hit too"
	whySecureOnly = "DoH is the only resolver: no HTTPS or A record, so no connection (RFC 9849 §6.1 needs the config " +
		"from DNS; a secure-only resolver has no fallback)"
	whyDoHWorks  = "stripped on Do53 only; the browser asks only DoH and gets the config: ECH (RFC 9849 §6.1)"
	whyStripAuto = "stripped on Do53 only: ECH if the browser asked DoH (which works); if it asked the system resolver it has no " +
		"config and connects with GREASE, the name in the clear: the downgrade through plaintext DNS works (RFC 9849 §10.2, §6.2)"
	whyFallback = "DoH blocked, the system resolver answers: with the HTTPS record over Do53, ECH (RFC 9849 §6.1); " +
		"a client that asks Do53 for A/AAAA only has no config and may send GREASE, the name in the clear (RFC 9849 §6.1, §6.2)"
	whyDowngrade = "DoH blocked and ech stripped on Do53: no config, so the client connects with GREASE and the name in the clear " +
		"(RFC 9849 §6.1, §6.2): the downgrade through plaintext DNS is expected to work (RFC 9849 §10.2)"
)

// expectedCell returns the outcomes RFC 9849 has a compliant client with
// the row's DNS mode reach against the column, and why. A column of
// several policies is judged by the strongest effect: a ClientHello block
// before the DNS ones. Policies that do not touch the ech case (an SNI
// block on another name, drop-udp: the case is HTTP/2) leave the control
// expectation; block-ech-size and poison, whose effect depends on the
// browser's sizes and resolver, are not modelled (nil: no deviation).
func expectedCell(row GridRow, col []adversary.Policy) ([]string, string) {
	var strip, blockDoH, blockHello bool
	for _, p := range col {
		switch p.Kind {
		case adversary.BlockSNI:
			if p.Name == PublicName {
				blockHello = true
			}
		case adversary.BlockECHSize, adversary.Poison:
			return nil, "not modelled for the browser rows: " + adversary.Join(col)
		case adversary.StripECH, adversary.DropHTTPSRR:
			strip = true
		case adversary.BlockDoH:
			blockDoH = true
		case adversary.BlockECH, adversary.BlockECHPublic, adversary.RstAfterHello:
			blockHello = true
		}
	}
	auto := row.DNS == DNSAutomatic
	switch {
	case blockHello:
		return []string{GridFailed}, whyNoFallback
	case blockDoH && !auto:
		return []string{GridFailed}, whySecureOnly
	case blockDoH && strip:
		return []string{GridGREASE, GridClear}, whyDowngrade
	case blockDoH:
		return []string{GridECH, GridGREASE, GridClear}, whyFallback
	case strip && auto:
		return []string{GridECH, GridGREASE}, whyStripAuto
	case strip:
		return []string{GridECH}, whyDoHWorks
	}
	return []string{GridECH}, whyControl
}
