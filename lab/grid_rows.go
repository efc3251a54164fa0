package lab

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/internal/gotls"
	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/resolver"
)

// Kinds of grid client (GridRow.Client).
const (
	GridClientECH       = "echlab"          // echlab's client, ECH, fail-closed (the default)
	GridClientFallback  = "echlab-fallback" // echlab's client with --fallback: retries without ECH when ECH cannot be used
	GridClientGREASE    = "echlab-grease"   // echlab's client sending GREASE ECH (no config: the name in the clear)
	GridClientH3        = "echlab-h3"       // echlab's client, ECH over HTTP/3 (QUIC), fail-closed
	GridClientCryptoTLS = "crypto-tls"      // a plain Go crypto/tls program: ECH when DNS has a config, retry once, else no ECH
)

// GridRow is one client of the grid: a client kind discovering ECH over
// one DNS transport.
type GridRow struct {
	Name   string `json:"name"`   // client/transport, e.g. "echlab/do53"
	Client string `json:"client"` // one of the GridClient kinds
	DNS    string `json:"dns"`    // the DNS transport its discovery uses
	About  string `json:"about"`
}

// GridRows are the grid's client rows, in order.
var GridRows = []GridRow{
	{"echlab/do53", GridClientECH, DNSDo53, "echlab client, ECH fail-closed, HTTPS record over Do53"},
	{"echlab/doh", GridClientECH, DNSDoH, "echlab client, ECH fail-closed, HTTPS record over DoH"},
	{"echlab-fallback/do53", GridClientFallback, DNSDo53, "echlab client --fallback: without ECH when no config or a rejection, Do53"},
	{"echlab-fallback/doh", GridClientFallback, DNSDoH, "echlab client --fallback, DoH"},
	{"crypto-tls/do53", GridClientCryptoTLS, DNSDo53, "Go crypto/tls: ECH if the HTTPS record has a config, else none (SVCB-optional), Do53"},
	{"crypto-tls/doh", GridClientCryptoTLS, DNSDoH, "Go crypto/tls as above, DoH"},
	{"echlab-grease/do53", GridClientGREASE, DNSDo53, "echlab client sending GREASE ECH, Do53"},
	{"echlab-h3/doh", GridClientH3, DNSDoH, "echlab client, ECH over HTTP/3 (QUIC), DoH"},
}

// GridRowNames lists the rows' names, comma-separated.
func GridRowNames() string {
	names := make([]string, len(GridRows))
	for i, r := range GridRows {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

// Client timeouts in the grid: short, so that a black hole shows as a
// timeout in seconds, not the client's default half minute.
const (
	gridConnectTimeout   = 2 * time.Second
	gridHandshakeTimeout = 2 * time.Second
)

// runCell runs one row against one column (its adversary a) and judges it.
func (s *stack) runCell(ctx context.Context, cfg GridConfig, row GridRow, col []adversary.Policy, a *adversary.Adversary) GridCell {
	cell := GridCell{Row: row.Name}
	ctx, cancel := context.WithTimeout(ctx, cfg.CellTimeout)
	defer cancel()
	start := time.Now()
	err := s.gridFetch(ctx, row, &cell)
	cell.Duration = time.Since(start)
	if err != nil {
		cell.Outcome = GridFailed
		cell.Error = err.Error()
		cell.ErrorClass = string(gotls.ErrorClass(err))
	}
	cell.Decisions = a.Decisions()
	cell.Counts = a.Counts()
	cell.Leaks = leaks(a.Seen())
	cell.Saw = sawLine(cell.Decisions)
	cell.Expected, cell.Why = expected(row, col)
	cell.AsExpected = len(cell.Expected) == 0 || slices.Contains(cell.Expected, cell.Outcome)
	return cell
}

// gridFetch runs the row's client against the shared-mode ECH server and
// sets the cell's outcome when it connected.
func (s *stack) gridFetch(ctx context.Context, row GridRow, cell *GridCell) error {
	sv, ok := s.services[ServiceShared]
	if !ok {
		return fmt.Errorf("no shared-mode server: %s", s.skipped[ServiceShared])
	}
	dnsURL, ok := s.dnsURLs[row.DNS]
	if !ok {
		return fmt.Errorf("no %s resolver listener", row.DNS)
	}
	stub, err := resolver.NewClient(dnsURL, resolver.ClientOptions{RootCAs: s.ca.Pool(), KeyLogWriter: s.keylog})
	if err != nil {
		return err
	}
	defer stub.Close()
	if row.Client == GridClientCryptoTLS {
		return s.cryptoTLSFetch(ctx, stub, sv, cell)
	}
	opts := client.Options{Resolver: stub, DNSTransport: row.DNS, DNSServer: dnsURL, RootCAs: s.ca.Pool(),
		KeyLog: s.keylog, ConnectTimeout: gridConnectTimeout, HandshakeTimeout: gridHandshakeTimeout}
	switch row.Client {
	case GridClientFallback:
		opts.Policy = client.PolicyFallback
	case GridClientGREASE:
		opts.Mode = client.ModeGREASE
	case GridClientH3:
		opts.HTTP3 = true
	}
	u := fmt.Sprintf("https://%s:%d/api/conn", SecretName, port(sv.addr))
	r, err := client.Fetch(ctx, u, opts)
	if err != nil {
		return err
	}
	switch {
	case r.ECH == client.ECHAccepted && r.Retried:
		cell.Outcome = GridECHRetried
	case r.ECH == client.ECHAccepted:
		cell.Outcome = GridECH
	case r.ECH == client.ECHGrease:
		cell.Outcome = GridGREASE
	default: // none, fallback: the true name went in the clear
		cell.Outcome = GridClear
	}
	return nil
}

// cryptoTLSFetch is the grid's plain Go program (internal/gotls).
func (s *stack) cryptoTLSFetch(ctx context.Context, stub resolver.Client, sv *service, cell *GridCell) error {
	r, err := gotls.Fetch(ctx, stub, SecretName, int(port(sv.addr)), gotls.Options{RootCAs: s.ca.Pool(),
		KeyLog: s.keylog, ConnectTimeout: gridConnectTimeout, HandshakeTimeout: gridHandshakeTimeout})
	if err != nil {
		return err
	}
	switch {
	case r.ECHAccepted && r.Retried:
		cell.Outcome = GridECHRetried
	case r.ECHAccepted:
		cell.Outcome = GridECH
	default:
		cell.Outcome = GridClear
	}
	return nil
}

// leaks says where the adversary saw the true name in the clear.
func leaks(seen []adversary.Sighting) []string {
	var out []string
	add := func(l string) {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	for _, sg := range seen {
		name := strings.TrimSuffix(strings.ToLower(sg.Name), ".")
		if name != SecretName && !strings.HasSuffix(name, "."+SecretName) {
			continue
		}
		switch sg.Kind {
		case "sni":
			add("sni")
		case "dns-query":
			add("dns")
		}
	}
	slices.Sort(out)
	return out
}

// sawLine sums up what the adversary did in a cell: "rst ×1 (block-ech:
// public.lab.test, ECH 208 B)"; "" when it only passed traffic.
func sawLine(ds []adversary.Decision) string {
	type key struct{ action, policy string }
	var order []key
	n := map[key]int{}
	ex := map[key]string{}
	for _, d := range ds {
		if d.Action == "" || d.Action == "pass" {
			continue
		}
		k := key{d.Action, d.Policy}
		if n[k] == 0 {
			order = append(order, k)
			ex[k] = decisionExample(d)
		}
		n[k]++
	}
	parts := make([]string, 0, len(order))
	for _, k := range order {
		parts = append(parts, fmt.Sprintf("%s ×%d (%s: %s)", k.action, n[k], k.policy, ex[k]))
	}
	return strings.Join(parts, "; ")
}

// decisionExample is what one decision saw, in a few words.
func decisionExample(d adversary.Decision) string {
	var w []string
	if d.SNI != "" {
		w = append(w, "SNI "+d.SNI)
	}
	if d.ECH {
		w = append(w, fmt.Sprintf("ECH %d B", d.ECHPayloadLen))
	}
	if d.QName != "" {
		w = append(w, strings.TrimSpace(d.QType+" "+d.QName))
	}
	if d.Detail != "" {
		w = append(w, d.Detail)
	}
	if len(w) == 0 {
		w = append(w, d.Flow.Proto+" to "+string(d.Flow.Role))
	}
	return strings.Join(w, ", ")
}
