package lab

import "github.com/echlab/echlab/client"

// Names of the scenarios other code refers to by name (tests, the
// docker lab, help texts); the declarations below are the only place
// that gives a name its behaviour.
const (
	// ScenarioHideALPN names the scenario in which ECH hides the ALPN as
	// well as the name (see sealHideALPN).
	ScenarioHideALPN = "ech-hide-alpn"
	// ScenarioDoTDiscovery names the scenario whose discovery is pinned to
	// DoT: ECH in shared mode, and no plain DNS query to leak the name.
	ScenarioDoTDiscovery = "ech-shared-dot-discovery"

	PlayResolverDown         = "resolver-down"          // fail closed with a DNS error, in bounded time
	PlayResolverDownFallback = "resolver-down-fallback" // told to fall back: connects without ECH, says why
)

// echObserved is what the observer of an ECH scenario reads in the SNI.
var echObserved = Watch{OuterSNI: PublicName}

// sealedALPN is why the ALPN shows next to ECH in the padding scenarios.
const sealedALPN = "ech.Seal copies crypto/tls's ALPN into the outer ClientHello"

// Scenarios is every scenario, echlab run's matrix in run order and
// Play's (PlayScenarios is the view of the ones Play runs). Adding a
// scenario is one declaration here plus its test.
var Scenarios = []Scenario{
	{Name: "baseline", Summary: "no ECH: the true name travels in the clear SNI", Default: true, EveryTransport: true,
		Service: ServiceBaseline, Client: ClientSpec{Mode: client.ModeBaseline}, Expect: Expect{ECH: client.ECHNone},
		Play: &PlaySpec{Default: true}},
	{Name: "ech-shared", Summary: "ECH, shared mode: one server decrypts and serves", Default: true, EveryTransport: true,
		Service: ServiceShared, Observer: echObserved, Play: &PlaySpec{Default: true, EveryTransport: true}},
	{Name: "ech-split", Summary: "ECH, split mode: a client-facing server decrypts and relays to a backend", Default: true,
		Service: ServiceSplit, Observer: echObserved, Play: &PlaySpec{Default: true}},
	{Name: "ech-hrr", Summary: "ECH through a HelloRetryRequest (the server forces one)", Default: true,
		Service: ServiceHRR, Expect: Expect{HRR: true}, Observer: echObserved},
	{Name: "stale-retry", Summary: "DNS publishes a stale config; the server rejects it, sends retry configs, the client retries", Default: true,
		Service: ServiceStale, Expect: Expect{Retry: true}, Observer: echObserved, Play: &PlaySpec{Default: true, StaleFirst: true}},
	{Name: "grease", Summary: "a GREASE ECH extension: looks like ECH, hides nothing", Default: true,
		Service: ServiceShared, Client: ClientSpec{Mode: client.ModeGREASE}, Expect: Expect{ECH: client.ECHGrease},
		Play: &PlaySpec{Default: true}},
	{Name: "ech-pq", Summary: "ECH with a post-quantum HPKE KEM (X-Wing, 0x647a)", Default: true,
		Service: ServicePQ, Observer: echObserved},
	{Name: "padding-on", Summary: "ClientHelloOuter sealed with the default padding policy", Default: true,
		Service: ServiceShared, Client: ClientSpec{Probe: ProbeSeal, Padding: PaddingDefault}, Observer: echObserved,
		Render: Render{ALPNInClear: sealedALPN}},
	{Name: "padding-off", Summary: "ClientHelloOuter sealed without padding", Default: true,
		Service: ServiceShared, Client: ClientSpec{Probe: ProbeSeal, Padding: PaddingNone}, Observer: echObserved,
		Render: Render{ALPNInClear: sealedALPN}},
	{Name: ScenarioHideALPN, Summary: "ECH hiding the ALPN too: inner ALPN h2, no ALPN in the ClientHelloOuter, key_share compressed (sealed by ech.Seal)", Default: true,
		Service: ServiceShared, Client: ClientSpec{Probe: ProbeSeal, HideALPN: true}, Observer: echObserved},
	{Name: "esni", Summary: "legacy ESNI (draft-02): _esni TXT keys, the name encrypted, ALPN in the clear; no server completes it", Default: true,
		Service: ServiceBaseline, Client: ClientSpec{Probe: ProbeESNI}, Expect: Expect{Judge: judgeESNI}},
	{Name: "padding-sweep", Summary: "inner names of 5..60 characters, padding on and off (length side channel)",
		Service: ServiceShared, Client: ClientSpec{Probe: ProbeSeal, Sweep: true}, Observer: echObserved,
		Render: Render{RowPerPadding: true, ALPNInClear: sealedALPN}},
	{Name: "ech-shared-h3", Summary: "ECH, shared mode, over HTTP/3 (QUIC); added by --h3", WithH3: true,
		Service: ServiceShared, Client: ClientSpec{HTTP3: true}, Observer: echObserved, Play: &PlaySpec{Default: true}},
	{Name: ScenarioDoTDiscovery, Transport: DNSDoT,
		Summary: "ECH, shared mode, its HTTPS record discovered over DoT whatever --transports says: " +
			"the observer must see a DoT flow, no plain DNS query, and only public.lab.test in the SNI",
		Service: ServiceShared, Observer: Watch{OuterSNI: PublicName, Discovery: "dot"}},

	{Name: PlayResolverDown, Summary: "the resolver is stopped: the ECH fetch fails closed with a DNS error, in bounded time",
		PlayOnly: true, Play: &PlaySpec{ResolverDown: true}},
	{Name: PlayResolverDownFallback, Summary: "the resolver is stopped, the client told to fall back: it connects without ECH and says why",
		PlayOnly: true, Play: &PlaySpec{ResolverDown: true, Fallback: true}},
}
