package lab

import (
	"errors"
	"fmt"
	"strings"

	"github.com/echlab/echlab/client"
)

// ErrScenario reports an unknown scenario or DNS transport name.
var ErrScenario = errors.New("lab: unknown scenario")

// DNS transports a scenario's discovery can use, as --transports names
// them.
const (
	DNSDo53 = "do53" // plain DNS over UDP (falls back to TCP on truncation)
	DNSDoT  = "dot"  // DNS over TLS
	DNSDoH  = "doh"  // DNS over HTTPS (HTTP/2)
	DNSDoH3 = "doh3" // DNS over HTTPS over HTTP/3
	DNSDoQ  = "doq"  // DNS over QUIC
)

// AllTransports lists every DNS transport, in the order reports use.
var AllTransports = []string{DNSDo53, DNSDoT, DNSDoH, DNSDoH3, DNSDoQ}

// Scenario is one scenario of the lab, declared once in scenarios.go:
// its name, what its client does, the server it needs, what a case must
// end with and what the observer must and must not see, how its rows read,
// and whether and how Play runs it. Run, Play, the rows and the glance ask
// the value; nothing compares scenario names.
type Scenario struct {
	Name    string // as --scenarios names it
	Summary string // one line for help texts and the report
	// Default puts the scenario in the default set; the others run only
	// when named.
	Default bool
	// EveryTransport crosses the scenario with all five DNS transports by
	// default; other scenarios use DoH unless --transports says otherwise.
	EveryTransport bool
	// Transport pins the scenario's discovery to one DNS transport,
	// whatever --transports says ("" follows the matrix).
	Transport string
	// WithH3: --h3 (RunConfig.H3) adds the scenario to the selection.
	WithH3 bool
	// PlayOnly scenarios are not part of echlab run's matrix (the fault
	// run of Play).
	PlayOnly bool

	Service  string     // the server the client reaches: a Service* name
	Client   ClientSpec // what the client does
	Expect   Expect     // what a case must end with (judge)
	Observer Watch      // what the observer must and must not see (rows)
	Render   Render     // how its rows read
	Play     *PlaySpec  // how Play runs it; nil: Play does not
}

// Servers a scenario can need (Scenario.Service).
const (
	ServiceBaseline = "baseline" // TLS without ECH
	ServiceShared   = "shared"   // ECH, shared mode (h2 and h3)
	ServiceSplit    = "split"    // ECH, split mode: client-facing relay and backend
	ServiceHRR      = "hrr"      // ECH, shared mode, forcing a HelloRetryRequest
	ServicePQ       = "pq"       // ECH with an X-Wing key
	ServiceStale    = "stale"    // ECH; DNS publishes a config the server does not hold
)

// Probe is the kind of client a case runs.
type Probe int

// Probes.
const (
	// ProbeFetch is package client's full HTTPS fetch (ClientSpec.Mode,
	// HTTP3).
	ProbeFetch Probe = iota
	// ProbeSeal seals crypto/tls's ClientHello with ech.Seal (padding
	// policy, or the hide-ALPN outer), sends it on raw TCP and reads up to
	// the ServerHello (scenario_probe.go).
	ProbeSeal
	// ProbeESNI sends a legacy ESNI ClientHello (scenario_esni.go).
	ProbeESNI
)

// ClientSpec is what a scenario's client does.
type ClientSpec struct {
	Probe Probe
	Mode  client.Mode // ProbeFetch: ModeECH (""), ModeBaseline or ModeGREASE
	HTTP3 bool        // ProbeFetch over HTTP/3; needs the server's UDP listener
	// Padding is ProbeSeal's padding policy (PaddingDefault, PaddingNone).
	Padding string
	// HideALPN: ProbeSeal drops the ALPN from the ClientHelloOuter and
	// compresses key_share (scenario_hide_alpn.go).
	HideALPN bool
	// Sweep expands one case per SweepNames name and padding policy.
	Sweep bool
}

// Expect is what judge checks of a case.
type Expect struct {
	// ECH is the client's ECH status a case must end with; "" means
	// client.ECHAccepted.
	ECH client.ECHStatus
	// Retry: the client must have retried with the server's retry
	// configs.
	Retry bool
	// HRR: the server must report a HelloRetryRequest.
	HRR bool
	// Judge replaces the checks above (ESNI: a ServerHello is enough).
	Judge func(r *client.Result, err error) (Outcome, string)
}

// Watch is what the observer must see of a scenario's cases, beyond the
// leak rules every row has (see Row.findLeaks). A row that misses one
// lists it in Row.Unmet and is marked MarkLeak.
type Watch struct {
	// OuterSNI is the only server_name the observer may read on the
	// connections to the service ("" checks nothing).
	OuterSNI string
	// Discovery is the observer's service name (observe.Flow.Service,
	// e.g. "dot") of the flows that must carry the case's DNS discovery:
	// at least one such flow, and no plain DNS flow ("" checks nothing).
	Discovery string
}

// Render is how a scenario's rows read.
type Render struct {
	// RowPerPadding splits the rows by padding policy (NAME-default,
	// NAME-none).
	RowPerPadding bool
	// ALPNInClear says why the ALPN shows in the clear next to real ECH;
	// "" means Go's crypto/tls copying it into the outer ClientHello.
	ALPNInClear string
}

// PlaySpec is how Play runs a scenario against remote servers.
type PlaySpec struct {
	Default bool // played when none are named
	// EveryTransport plays it over every resolver URL (or --transports);
	// the others over DoH.
	EveryTransport bool
	// StaleFirst waits for a rotation, then connects with the config
	// published before it (PlayConfig.RotationWait more time).
	StaleFirst bool
	// ResolverDown is the fault run: the resolver is stopped and the
	// client must fail closed with a DNS error in bounded time, or, with
	// Fallback, connect without ECH and say why.
	ResolverDown bool
	Fallback     bool
}

// LookupScenario returns the scenario of a name, echlab run's or Play's.
func LookupScenario(name string) (Scenario, error) {
	if s, ok := scenarioByName[name]; ok {
		return *s, nil
	}
	return Scenario{}, fmt.Errorf("%w %q (known: %s)", ErrScenario, name, ScenarioNames())
}

// scenarioByName indexes Scenarios.
var scenarioByName = func() map[string]*Scenario {
	m := map[string]*Scenario{}
	for i := range Scenarios {
		m[Scenarios[i].Name] = &Scenarios[i]
	}
	return m
}()

// scenario is the declaration of the case's scenario; an unknown name
// gets a plain ECH fetch of the shared server.
func (c Case) scenario() Scenario {
	if s, ok := scenarioByName[c.Scenario]; ok {
		return *s
	}
	return Scenario{Name: c.Scenario, Service: ServiceShared}
}

// playSpec is how Play runs the scenario (the zero PlaySpec without one).
func (s Scenario) playSpec() PlaySpec {
	if s.Play == nil {
		return PlaySpec{}
	}
	return *s.Play
}

// ScenarioNames lists echlab run's scenarios, comma-separated.
func ScenarioNames() string {
	return strings.Join(runScenarioNames(func(Scenario) bool { return true }), ",")
}

// NamedOnlyScenarios lists echlab run's scenarios that run only when
// named.
func NamedOnlyScenarios() []string {
	return runScenarioNames(func(s Scenario) bool { return !s.Default })
}

func runScenarioNames(keep func(Scenario) bool) []string {
	var names []string
	for _, s := range Scenarios {
		if !s.PlayOnly && keep(s) {
			names = append(names, s.Name)
		}
	}
	return names
}

// Case is one run of the matrix: a scenario, the DNS transport its
// discovery uses, and the repeat index. Sweep cases also carry the inner
// name and padding policy.
type Case struct {
	Scenario  string `json:"scenario"`
	Transport string `json:"transport"`
	Repeat    int    `json:"repeat"`
	InnerName string `json:"inner_name,omitempty"`
	Padding   string `json:"padding,omitempty"` // "default" or "none" for padding scenarios
}

// Label names the case in progress lines: "ech-shared/doh #1".
func (c Case) Label() string {
	l := c.Scenario + "/" + c.Transport
	if c.InnerName != "" {
		l += " " + c.InnerName + " padding=" + c.Padding
	}
	return fmt.Sprintf("%s #%d", l, c.Repeat)
}
