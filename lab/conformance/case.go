package conformance

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrCase is wrapped by every error about a case definition.
var ErrCase = errors.New("conformance: bad case")

// Level is the strength of the requirement a case checks (RFC 2119).
type Level string

// Levels.
const (
	MUST   Level = "MUST"
	SHOULD Level = "SHOULD"
	MAY    Level = "MAY" // informative: several behaviours are allowed, the cell shows which
)

// Outcome is how a client's attempt ended, as the evidence shows it.
type Outcome string

// Outcomes.
const (
	OutcomeECH        Outcome = "ech"         // connected, ECH accepted on the first ClientHello
	OutcomeECHRetried Outcome = "ech-retried" // connected, ECH accepted after one retry with the server's retry configs
	OutcomeClear      Outcome = "clear"       // connected without ECH: the true name in the cleartext SNI
	OutcomeGREASE     Outcome = "grease"      // sent a GREASE ECH extension (no real config)
	OutcomeRefused    Outcome = "refused"     // reported an error without sending any ClientHello
	OutcomeFailed     Outcome = "failed"      // sent ClientHellos and reported an error
)

// Case is one entry of the catalogue: what DNS publishes for
// secret.lab.test, how the server behaves, and what the RFCs require of a
// client. Adding a case is adding one Case value to the catalogue.
type Case struct {
	Name    string // short, lower-case, hyphenated; used in --case and file names
	Summary string // one line: what is odd about the case
	RFC     string // section numbers and the quoted requirement the expectation rests on
	// Discovery marks a case about the HTTPS record lookup itself (alias
	// chains, priorities, owner names). The Go crypto/tls column borrows
	// echlab's client.Discover (Go has no HTTPS-record resolver), so such
	// cells are n.a. for it.
	Discovery bool
	DNS       DNSSpec
	Server    ServerVariant
	Expect    Expect
}

// DNSSpec says what the resolver publishes and how the clients ask.
type DNSSpec struct {
	// Transport is how the clients' discovery reaches the resolver: DNSDoH
	// ("" means DoH) or DNSDo53 (UDP, TCP after a truncated answer).
	Transport string
	// Records are the HTTPS records. Nil means one ServiceMode record at
	// the HTTPS owner (_PORT._https.secret.lab.test), priority 1, target
	// public.lab.test, ech holding the good config.
	Records []HTTPSRecord
}

// DNS transports of DNSSpec.Transport.
const (
	DNSDoH  = "doh"
	DNSDo53 = "do53"
)

// OwnerName in HTTPSRecord.Owner and Target stands for the HTTPS owner name
// the clients query: _PORT._https.secret.lab.test.
const OwnerName = "$OWNER"

// HTTPSRecord is one HTTPS record. Names (Owner, Target) are OwnerName,
// "." (Target only), or a name relative to lab.test ("alias1", "secret").
type HTTPSRecord struct {
	Owner    string // "" means OwnerName
	Priority uint16 // 0 is AliasMode
	Target   string // "" means "public" (public.lab.test)
	ZeroTTL  bool   // TTL 0 instead of 60
	// ECH are the configs of the ech SvcParam's ECHConfigList, in order;
	// empty means no ech SvcParam.
	ECH []ConfigKind
	// Edit breaks the encoded list after it is built.
	Edit ListEdit
	// MandatoryECH adds mandatory=ech (RFC 9460 §8).
	MandatoryECH bool
	// UnknownMandatory adds the SvcParam key65000="x", a key no client
	// knows, and lists it in mandatory (RFC 9460 §8: a client that does
	// not recognize a mandatory key ignores the record).
	UnknownMandatory bool
	// SVCB publishes the record as a generic SVCB record (type 64)
	// instead of HTTPS (type 65), with the same RDATA.
	SVCB bool
}

// ConfigKind names one ECHConfig the suite can publish (see dns_records.go
// for how each is made from Env's keys and byte edits).
type ConfigKind string

// Config kinds. Each bad kind has its own config id, so that the outer
// ClientHello shows whether a client used it.
const (
	ConfigGood              ConfigKind = "good"                // Env.Key's config, id 1
	ConfigOther             ConfigKind = "other"               // Env.Other's config, id 2 (no server holds it unless a variant says so)
	ConfigUnknownVersion    ConfigKind = "unknown-version"     // Env.Key's contents under version 0xfe0e, id 9
	ConfigMandatoryExt      ConfigKind = "mandatory-extension" // Env.Key's config with an unknown mandatory extension 0xfa5a, id 10
	ConfigPublicNameIP      ConfigKind = "public-name-ip"      // public_name 192.168.100.200 (an IPv4 literal), id 11
	ConfigPublicNameInvalid ConfigKind = "public-name-invalid" // public_name pub_ic.lab.test (not LDH), id 12
)

// ListEdit breaks an encoded ECHConfigList.
type ListEdit string

// List edits.
const (
	EditNone ListEdit = ""
	// EditTruncated drops the last 10 bytes of the list (its length prefix
	// still counts them): a value that is not an ECHConfigList.
	EditTruncated ListEdit = "truncated"
	// EditBase64Text publishes the list's base64 text as the value's bytes
	// (an operator who encoded twice): not an ECHConfigList.
	EditBase64Text ListEdit = "base64-text"
)

// Expect is what a client must do in a case.
type Expect struct {
	Level Level
	// Outcomes are the end states that pass (any of them).
	Outcomes []Outcome
	// ConfigID, when not zero, is the config id the first real ECH offer
	// must carry.
	ConfigID uint8
	// MaxHellos, when not zero, is the most ClientHellos the client may
	// send (1: no retry; 2: one retry).
	MaxHellos int
	// NoClearName requires that the true name never appears in a
	// cleartext SNI.
	NoClearName bool
	// MaxHTTPSQueries, when not zero, bounds the HTTPS queries the client
	// sends (alias loops).
	MaxHTTPSQueries int
	// NoSVCBQueries requires that the client sends no SVCB (type 64)
	// query: an https origin is looked up with HTTPS records only.
	NoSVCBQueries bool
}

// Every case is also checked for one rule derived from its DNS records: a
// client never offers ECH with a config the RFC says to skip (RFC 9849
// §4, §4.2, §6.1.7), i.e. the id of any kind but good and other.

var (
	allOutcomes = []Outcome{OutcomeECH, OutcomeECHRetried, OutcomeClear, OutcomeGREASE, OutcomeRefused, OutcomeFailed}
	configKinds = []ConfigKind{ConfigGood, ConfigOther, ConfigUnknownVersion, ConfigMandatoryExt, ConfigPublicNameIP, ConfigPublicNameInvalid}
)

// Validate checks one case definition without starting anything.
func (c *Case) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w %q: %s", ErrCase, c.Name, fmt.Sprintf(format, a...))
	}
	if c.Name == "" || strings.Trim(c.Name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return bad("name must be lower-case letters, digits and hyphens")
	}
	if c.Summary == "" || c.RFC == "" {
		return bad("summary and RFC text are required")
	}
	if !slices.Contains(Variants(), c.Server) {
		return bad("unknown server variant %q (known: %v)", c.Server, Variants())
	}
	if err := c.Expect.validate(); err != nil {
		return bad("%v", err)
	}
	if err := c.DNS.validate(); err != nil {
		return bad("%v", err)
	}
	return nil
}

func (e *Expect) validate() error {
	switch e.Level {
	case MUST, SHOULD, MAY:
	default:
		return fmt.Errorf("level %q is not MUST, SHOULD or MAY", e.Level)
	}
	if len(e.Outcomes) == 0 {
		return errors.New("empty expectation: no outcome passes")
	}
	for _, o := range e.Outcomes {
		if !slices.Contains(allOutcomes, o) {
			return fmt.Errorf("unknown outcome %q", o)
		}
	}
	if e.MaxHellos < 0 || e.MaxHTTPSQueries < 0 {
		return errors.New("negative limit")
	}
	return nil
}

func (d *DNSSpec) validate() error {
	if d.Transport != "" && d.Transport != DNSDoH && d.Transport != DNSDo53 {
		return fmt.Errorf("DNS transport %q is not doh or do53", d.Transport)
	}
	for i, r := range d.Records {
		if err := r.validate(); err != nil {
			return fmt.Errorf("record %d: %w", i, err)
		}
	}
	return nil
}

func (r *HTTPSRecord) validate() error {
	for _, k := range r.ECH {
		if !slices.Contains(configKinds, k) {
			return fmt.Errorf("unknown config kind %q", k)
		}
	}
	if r.Edit != EditNone && r.Edit != EditTruncated && r.Edit != EditBase64Text {
		return fmt.Errorf("unknown list edit %q", r.Edit)
	}
	if r.Edit != EditNone && len(r.ECH) == 0 {
		return fmt.Errorf("list edit %q without configs", r.Edit)
	}
	if r.Priority == 0 && (len(r.ECH) > 0 || r.MandatoryECH || r.UnknownMandatory) {
		return errors.New("an AliasMode record (priority 0) carries no SvcParams")
	}
	if r.MandatoryECH && len(r.ECH) == 0 {
		return errors.New("mandatory=ech without an ech SvcParam")
	}
	for _, n := range []string{r.Owner, r.Target} {
		if n == OwnerName || n == "" || n == "." {
			continue
		}
		if strings.HasSuffix(n, ".") || strings.ContainsAny(n, " \t$") {
			return fmt.Errorf("name %q is not OwnerName, \".\" or a name relative to lab.test", n)
		}
	}
	if r.Owner == "." {
		return errors.New(`owner "." is outside the zone`)
	}
	return nil
}

// ValidateCatalogue checks every case and that names are unique.
func ValidateCatalogue(cases []Case) error {
	seen := map[string]bool{}
	var errs []error
	for i := range cases {
		c := &cases[i]
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
		if seen[c.Name] {
			errs = append(errs, fmt.Errorf("%w %q: duplicate name", ErrCase, c.Name))
		}
		seen[c.Name] = true
	}
	return errors.Join(errs...)
}
