package conformance

import (
	"fmt"
	"slices"
	"strings"
)

// Quotes the expectations rest on, shared by several cases.
const (
	rfcSkipVersion   = `RFC 9849 §4: "Clients MUST ignore any ECHConfig structure with a version they do not support."`
	rfcSkipMandatory = `RFC 9849 §4.2: "If an unsupported mandatory extension is present, clients MUST ignore the ECHConfig."`
	rfcNoCompatible  = `RFC 9849 §6.1: "If no compatible configuration is found, then the client SHOULD proceed as described in Section 6.2" (GREASE); a fail-closed client that refuses does not use the bad config either.`
	rfcPublicName    = `RFC 9849 §6.1.7: "Clients SHOULD ignore any ECHConfig structure with a public_name that is not a valid host name in preferred name syntax" … "Clients additionally SHOULD ignore the structure if the final LDH label either consists of all ASCII digits …"`
	rfcMalformed     = `RFC 9460 §2.2: a client MUST consider an RR malformed if "SvcParamValue for a SvcParamKey does not have the expected format" … "If any RRs are malformed, the client MUST reject the entire RRSet and fall back to non-SVCB connection establishment"; RFC 9848 §3: the value "is an ECHConfigList".`
	rfcReliant       = `RFC 9848 §5.1: "ECH-capable SVCB-optional clients MUST switch to SVCB-reliant connection establishment if SVCB resolution succeeded … and all alternative endpoints have an "ech" SvcParam."`
)

// ok is the expectation of a case that must end with ECH accepted on the
// first ClientHello, with the good config (id 1).
var ok = Expect{Level: MUST, Outcomes: []Outcome{OutcomeECH}, ConfigID: 1, MaxHellos: 1, NoClearName: true}

// noUse is the expectation of a case whose only configs must be skipped:
// GREASE, or a refusal, never ECH with the bad config (the derived rule)
// and never the true name in the clear.
var noUse = Expect{Level: MUST, Outcomes: []Outcome{OutcomeGREASE, OutcomeRefused}}

// only publishes one ServiceMode record whose list holds kinds.
func only(kinds ...ConfigKind) DNSSpec {
	return DNSSpec{Records: []HTTPSRecord{{Priority: 1, ECH: kinds}}}
}

// repeat returns n copies of k.
func repeat(k ConfigKind, n int) []ConfigKind {
	out := make([]ConfigKind, n)
	for i := range out {
		out[i] = k
	}
	return out
}

// Catalogue returns the cases, in order. Each is one declaration.
func Catalogue() []Case {
	return []Case{
		{Name: "baseline", Summary: "one good config, a good server",
			RFC: `RFC 9849 §6.1: "The client offers ECH if it is in possession of a compatible ECH configuration"`,
			DNS: only(ConfigGood), Server: ServerGood, Expect: ok},

		// The ECHConfigList.
		{Name: "unknown-version-only", Summary: "the list's only config has version 0xfe0e",
			RFC: rfcSkipVersion + " " + rfcNoCompatible,
			DNS: only(ConfigUnknownVersion), Server: ServerGood, Expect: noUse},
		{Name: "unknown-version-then-good", Summary: "an unknown-version config, then the good one",
			RFC: rfcSkipVersion, DNS: only(ConfigUnknownVersion, ConfigGood), Server: ServerGood, Expect: ok},
		{Name: "mandatory-extension-only", Summary: "the only config carries an unknown mandatory extension (0xfa5a)",
			RFC: rfcSkipMandatory + " " + rfcNoCompatible,
			DNS: only(ConfigMandatoryExt), Server: ServerGood, Expect: noUse},
		{Name: "mandatory-extension-then-good", Summary: "a config with an unknown mandatory extension, then the good one",
			RFC: rfcSkipMandatory, DNS: only(ConfigMandatoryExt, ConfigGood), Server: ServerGood, Expect: ok},
		{Name: "public-name-ip", Summary: "the only config's public_name is 192.168.100.200",
			RFC: rfcPublicName, DNS: only(ConfigPublicNameIP), Server: ServerGood,
			Expect: Expect{Level: SHOULD, Outcomes: []Outcome{OutcomeGREASE, OutcomeRefused}}},
		{Name: "public-name-invalid", Summary: "the only config's public_name is pub_ic.lab.test (not LDH)",
			RFC: rfcPublicName, DNS: only(ConfigPublicNameInvalid), Server: ServerGood,
			Expect: Expect{Level: SHOULD, Outcomes: []Outcome{OutcomeGREASE, OutcomeRefused}}},
		{Name: "public-name-ip-then-good", Summary: "a config whose public_name is an IPv4 literal, then the good one",
			RFC: rfcPublicName, DNS: only(ConfigPublicNameIP, ConfigGood), Server: ServerGood,
			Expect: Expect{Level: SHOULD, Outcomes: []Outcome{OutcomeECH}, ConfigID: 1, MaxHellos: 1, NoClearName: true}},

		// The ech SvcParam's bytes.
		{Name: "ech-base64-text", Summary: "the ech value holds the list's base64 text, not the list",
			RFC:    rfcMalformed + " " + rfcNoCompatible,
			DNS:    DNSSpec{Records: []HTTPSRecord{{Priority: 1, ECH: []ConfigKind{ConfigGood}, Edit: EditBase64Text}}},
			Server: ServerGood, Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeGREASE, OutcomeRefused, OutcomeClear}}},
		{Name: "ech-truncated", Summary: "the ech value is the good list less its last 10 bytes",
			RFC:    rfcMalformed + " " + rfcNoCompatible,
			DNS:    DNSSpec{Records: []HTTPSRecord{{Priority: 1, ECH: []ConfigKind{ConfigGood}, Edit: EditTruncated}}},
			Server: ServerGood, Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeGREASE, OutcomeRefused, OutcomeClear}}},
		{Name: "oversized-list-do53", Summary: "24 unknown-version configs then the good one (about 1.7 kB): truncated over UDP, whole over TCP",
			RFC:    `RFC 1035 §4.2.1 / RFC 7766 §5: a truncated UDP answer is retried over TCP. ` + rfcSkipVersion,
			DNS:    DNSSpec{Transport: DNSDo53, Records: []HTTPSRecord{{Priority: 1, ECH: append(repeat(ConfigUnknownVersion, 24), ConfigGood)}}},
			Server: ServerGood, Expect: ok},
		{Name: "oversized-list-doh", Summary: "the same 1.7 kB list over DoH (no size limit)",
			RFC: rfcSkipVersion, DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 1, ECH: append(repeat(ConfigUnknownVersion, 24), ConfigGood)}}},
			Server: ServerGood, Expect: ok},

		// The HTTPS records.
		{Name: "alias-chain", Summary: "AliasMode → alias1 → AliasMode → alias2 → ServiceMode with the good config",
			RFC:       `RFC 9460 §2.4.2: "implementations MUST be able to follow at least one AliasMode record" (two here; "the exact value of this limit is left to implementations").`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Target: "alias1"}, {Owner: "alias1", Target: "alias2"},
				{Owner: "alias2", Priority: 1, ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: Expect{Level: SHOULD, Outcomes: []Outcome{OutcomeECH}, ConfigID: 1, MaxHellos: 1, NoClearName: true}},
		{Name: "alias-beside-service", Summary: "AliasMode → alias1 next to a ServiceMode record (config id 2) at the owner; alias1 has the good config",
			RFC:       `RFC 9460 §2.4.2: "If an RRSet contains a record in AliasMode, the recipient MUST ignore any ServiceMode records in the set."`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Target: "alias1"}, {Priority: 1, ECH: []ConfigKind{ConfigOther}},
				{Owner: "alias1", Priority: 1, ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: ok},
		{Name: "alias-loop", Summary: "AliasMode → loop → AliasMode back to the owner",
			RFC:       `RFC 9460 §2.4.2: "clients … MUST impose a limit on the total number of SVCB aliases they will follow"; §3.1: at the limit "the client SHOULD fall back to the authority endpoint, as if the origin's SVCB record did not exist".`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Target: "loop"}, {Owner: "loop", Target: OwnerName}}},
			Server: ServerGood, Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeGREASE, OutcomeRefused, OutcomeClear}, MaxHTTPSQueries: 32}},
		{Name: "service-without-ech", Summary: "a ServiceMode record without ech",
			RFC: `RFC 9848 §5.1 binds a client to ECH only when "all alternative endpoints have an "ech" SvcParam"; RFC 9849 §6.2: without a config the client "SHOULD send a GREASE "encrypted_client_hello" extension".`,
			DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 1}}}, Server: ServerGood,
			Expect: Expect{Level: MAY, Outcomes: []Outcome{OutcomeGREASE, OutcomeRefused, OutcomeClear}}},
		{Name: "port-prefix-target-dot", Summary: `the _PORT._https record has TargetName "."`,
			RFC:       `RFC 9460 §2.5.2: "if TargetName has the value ".", then the owner name of this record MUST be used as the effective TargetName". At a _PORT._https owner that name has no address records: echlab reads it as the origin host, Chromium is reported to ignore the record. Any of ECH with the good config, a refusal or GREASE passes.`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 1, Target: ".", ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: Expect{Level: MAY, Outcomes: []Outcome{OutcomeECH, OutcomeRefused, OutcomeGREASE}}},
		{Name: "port-prefix-target-explicit", Summary: "the _PORT._https record names secret.lab.test as its target",
			RFC:       `RFC 9460 §9.1: HTTPS records for other ports than 443 are at "_PORT._https." names (Port Prefix Naming); the record applies.`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 1, Target: "secret", ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: ok},
		{Name: "priorities", Summary: "priority 2 with the other config listed before priority 1 with the good one",
			RFC:       `RFC 9460 §2.4.1: "SvcPriority … Lower values indicate higher priority"; §3: the client uses "the priority-ordered endpoints".`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 2, ECH: []ConfigKind{ConfigOther}},
				{Priority: 1, ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: Expect{Level: SHOULD, Outcomes: []Outcome{OutcomeECH}, ConfigID: 1, MaxHellos: 1, NoClearName: true}},
		{Name: "ttl-zero", Summary: "the HTTPS record has TTL 0",
			RFC:       `RFC 1035 §3.2.1: TTL 0 means the record is used "only for the transaction in progress", i.e. it is used.`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 1, ZeroTTL: true, ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: ok},
		{Name: "mandatory-ech", Summary: "the record says mandatory=ech",
			RFC:       `RFC 9460 §8: a client that does not support a key in "mandatory" MUST ignore the RR; an ECH client supports ech, so the record applies.`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 1, MandatoryECH: true, ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: ok},
		{Name: "mandatory-unknown-key", Summary: "priority 1 says mandatory=ech,key65000 (an unknown key) with the other config; priority 2 has the good one",
			RFC:       `RFC 9460 §8: "A ServiceMode RR is considered "compatible" by a client if the client recognizes all the mandatory keys and their values indicate that successful connection establishment is possible. Incompatible RRs are ignored (see step 5 of the procedure defined in Section 3)." No client knows key65000, so the priority-1 record and its config (id 2) are not used; priority 2 is. Graded MUST: ignoring it is the §3 procedure itself.`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 1, MandatoryECH: true, UnknownMandatory: true, ECH: []ConfigKind{ConfigOther}},
				{Priority: 2, ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: ok},
		{Name: "svcb-type", Summary: "no HTTPS record: an SVCB (type 64) record at the HTTPS owner with mandatory=ech and the good config",
			RFC:       `RFC 9460 §9: "the HTTPS RR type is defined as an SVCB-compatible RR type, specific to the "https" and "http" schemes. Clients MUST NOT perform SVCB queries or accept SVCB responses for "https" or "http" schemes."`,
			Discovery: true, DNS: DNSSpec{Records: []HTTPSRecord{{Priority: 1, SVCB: true, MandatoryECH: true, ECH: []ConfigKind{ConfigGood}}}},
			Server: ServerGood, Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeGREASE, OutcomeRefused, OutcomeClear}, NoSVCBQueries: true}},

		// The server.
		{Name: "reject-no-retry", Summary: "the server cannot decrypt and sends no retry_configs",
			RFC: `RFC 9849 §6.1.6: without retry configs the client "can regard ECH as securely disabled by the server, and it SHOULD retry the handshake with a new transport connection and ECH disabled"; "If a client does not retry, it MUST report an error to the calling application."`,
			DNS: only(ConfigGood), Server: ServerRejectNoRetry,
			Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeFailed, OutcomeClear}, ConfigID: 1}},
		{Name: "retry-foreign-cert", Summary: "the server rejects with retry_configs under a certificate not valid for the public name",
			RFC: `RFC 9849 §6.1.7: "The client MUST verify that the certificate is valid for ECHConfig.contents.public_name. If invalid, it MUST abort"; §6.1.6: "It MUST NOT use the retry configurations. It MUST NOT treat this as a secure signal to disable ECH."`,
			DNS: only(ConfigGood), Server: ServerRetryForeignCert,
			Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeFailed}, ConfigID: 1, MaxHellos: 1, NoClearName: true}},
		{Name: "retry-stale", Summary: "the retry_configs are themselves rejected (a loop if followed)",
			RFC: `RFC 9849 §6.1.6: "Clients SHOULD NOT accept "retry_config" in response to a connection initiated in response to a "retry_config"" and "If a client does not retry, it MUST report an error".`,
			DNS: only(ConfigGood), Server: ServerRetryStale,
			Expect: Expect{Level: SHOULD, Outcomes: []Outcome{OutcomeFailed}, ConfigID: 1, MaxHellos: 2, NoClearName: true}},
		{Name: "flip-confirmation", Summary: "one bit of the ServerHello's acceptance confirmation is flipped on the wire",
			RFC: `RFC 9849 §6.1.4: "If this value matches the last 8 bytes of ServerHello.random, the server has accepted ECH. Otherwise, it has rejected ECH"; the server went on with the inner hello, so the handshake cannot complete.`,
			DNS: only(ConfigGood), Server: ServerFlipConfirmation,
			Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeFailed}, ConfigID: 1, NoClearName: true}},
		{Name: "hrr-without-ech", Summary: "the server accepts, forces a HelloRetryRequest, and the HRR's encrypted_client_hello extension is removed on the wire",
			RFC: `RFC 9849 §6.1.4: "If the message is a HelloRetryRequest, the client checks for the "encrypted_client_hello" extension. If none is found, the server has rejected ECH"; the client goes on with the ClientHelloOuter, and the server, which took the inner hello, cannot complete.`,
			DNS: only(ConfigGood), Server: ServerHRRNoECH,
			Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeFailed}, ConfigID: 1, NoClearName: true}},
		{Name: "flip-hrr-confirmation", Summary: "the server accepts, forces a HelloRetryRequest, and one bit of the HRR's ECH confirmation is flipped on the wire",
			RFC: `RFC 9849 §6.1.4: "If the message is a HelloRetryRequest, the client checks for the "encrypted_client_hello" extension. If none is found, the server has rejected ECH. Otherwise, if it has a length other than 8, the client aborts the handshake with a "decode_error" alert. Otherwise, the client computes hrr_accept_confirmation as described in Section 7.2.1. If this value matches the extension payload, the server has accepted ECH. Otherwise, it has rejected ECH." The client goes on with ClientHelloOuter, and the server, which took the inner hello, cannot complete.`,
			DNS: only(ConfigGood), Server: ServerFlipHRRConfirmation,
			Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeFailed}, ConfigID: 1, NoClearName: true}},
		{Name: "close-after-server-hello", Summary: "the connection closes right after the ServerHello",
			RFC: rfcReliant + ` A transport failure is no signal to drop ECH.`,
			DNS: only(ConfigGood), Server: ServerCloseAfterSH,
			Expect: Expect{Level: MUST, Outcomes: []Outcome{OutcomeFailed}, ConfigID: 1, NoClearName: true}},
	}
}

// SelectCases returns the catalogue's cases with the given names, in
// catalogue order; no names means all. An unknown name is an error that
// lists the known ones.
func SelectCases(names []string) ([]Case, error) {
	all := Catalogue()
	if len(names) == 0 {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var out []Case
	for _, c := range all {
		if want[c.Name] {
			out = append(out, c)
			delete(want, c.Name)
		}
	}
	if len(want) > 0 {
		var unknown []string
		for n := range want {
			unknown = append(unknown, n)
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("%w: unknown case %s (known: %s)", ErrCase, strings.Join(unknown, ", "), CaseNames())
	}
	return out, nil
}

// CaseNames lists the catalogue's case names, comma-separated.
func CaseNames() string {
	var names []string
	for _, c := range Catalogue() {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}
