package interop

import (
	_ "embed"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/lab/capture"
	"github.com/echlab/echlab/resolver"
	"github.com/echlab/echlab/server"
)

// Lab names served by the interop lab. Each resolves to 127.0.0.1.
const (
	PublicName = "public.lab.test" // ECHConfig public_name
	SecretName = "secret.lab.test" // case ech: current config published
	PlainName  = "plain.lab.test"  // case grease: no HTTPS record
	StaleName  = "stale.lab.test"  // case retry: rotated-away config published
	H3Name     = "h3.lab.test"     // case h3: current config, alpn h3,h2
)

//go:embed lab.test.zone
var zoneTemplate []byte

//go:embed probe.zone
var probeZone []byte

// Lab is the running lab: one ECH server (TCP and QUIC on one port) and a
// DoH resolver, both on loopback, sharing a lab CA.
type Lab struct {
	Dir       string    // output directory of the run
	CAFile    string    // the lab CA certificate (PEM)
	DoHURL    string    // https://127.0.0.1:PORT/dns-query
	Port      int       // the ECH server's port (TCP and UDP)
	DoHPort   int       // the resolver's DoH port (TCP)
	StaleID   uint8     // config id published for StaleName, no longer held
	CurrentID uint8     // config id the server holds now
	Log       *ConnLog  // the server's connection records
	Queries   *QueryLog // the resolver's query records
	// Do53UDP and Do53TCP are the resolver's plain DNS as the browsers
	// reach it: the relays' addresses ("" without a front).
	Do53UDP, Do53TCP string
	server           *server.Server // the ECH server
	resolver         *resolver.Running
	front            *capture.Observer // the adversary's relays, or nil
	after            *afterServer      // plain HTTP on loopback: AfterURL's redirects
}

// StartLab starts the lab in dir: it makes the CA and a key set, starts the
// ECH server, proves with a Go client that the first key works, rotates it
// away (keeping a copy that DNS publishes for StaleName), and starts the
// resolver with DoH.
func StartLab(dir string) (*Lab, error) { return startLab(dir, nil) }

// startLab is StartLab; with front, the browsers reach the server and
// the resolver only through front's relays (see frontServer).
func startLab(dir string, front *capture.Observer) (*Lab, error) {
	l := &Lab{Dir: dir, front: front}
	ok := false
	defer func() {
		if !ok {
			l.Close()
		}
	}()
	pkiDir := filepath.Join(dir, "pki")
	ca, err := pki.LoadOrCreate(pkiDir)
	if err != nil {
		return nil, err
	}
	l.CAFile = filepath.Join(pkiDir, pki.CACertFile)
	ks, err := l.startServer(ca)
	if err != nil {
		return nil, err
	}
	if err := l.rotate(ca, ks); err != nil {
		return nil, err
	}
	if err := l.frontServer(); err != nil {
		return nil, err
	}
	if err := l.startResolver(pkiDir); err != nil {
		return nil, err
	}
	if err := l.frontResolver(); err != nil {
		return nil, err
	}
	if l.after, err = startAfterServer(); err != nil {
		return nil, err
	}
	ok = true
	return l, nil
}

// startServer makes the first key, saves it as the stale key set too, and
// starts the server with it.
func (l *Lab) startServer(ca *pki.CA) (*ech.KeySet, error) {
	ks := &ech.KeySet{}
	id, err := ks.FreeConfigID(nil)
	if err != nil {
		return nil, err
	}
	k, err := ech.GenerateKey(ech.KeyOptions{PublicName: PublicName, ConfigID: id})
	if err != nil {
		return nil, err
	}
	ks.Add(k, true)
	l.StaleID = k.Config.ConfigID
	for _, d := range []string{"current", "stale"} {
		if err := ech.SaveKeySet(filepath.Join(l.Dir, "keys", d), ks); err != nil {
			return nil, err
		}
	}
	logFile, err := os.OpenFile(filepath.Join(l.Dir, "conn.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	l.Log = newConnLog(logFile)
	l.server, err = server.Start(server.Config{PublicName: PublicName, CA: ca, Keys: ks, HTTP3: true, Log: l.Log,
		Names: []string{SecretName, PlainName, StaleName, H3Name}})
	if err != nil {
		return nil, err
	}
	_, p, _ := net.SplitHostPort(l.server.Addr())
	l.Port, _ = strconv.Atoi(p)
	return ks, nil
}

// rotate checks the first key with a Go client (so the server has held
// it), then replaces it: the old key is dropped at once, as after a grace
// period, and only the new one is published and accepted.
func (l *Lab) rotate(ca *pki.CA, ks *ech.KeySet) error {
	if err := selfCheck(l.server.Addr(), ca, ks); err != nil {
		return err
	}
	// The rotator's own clock: the rotation happens at its "now", and the
	// clock is then moved past the grace period, so that Expire drops the
	// old key without waiting for the wall clock to pass it.
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	const grace = time.Nanosecond
	rot, err := server.StartRotator(server.RotatorConfig{Keys: ks, Dir: filepath.Join(l.Dir, "keys", "current"),
		Grace: grace, Now: clock, KeyOptions: ech.KeyOptions{PublicName: PublicName}})
	if err != nil {
		return err
	}
	defer rot.Close()
	k, err := rot.Rotate()
	if err != nil {
		return err
	}
	mu.Lock()
	now = now.Add(grace)
	mu.Unlock()
	if _, err := rot.Expire(); err != nil {
		return err
	}
	l.CurrentID = k.Config.ConfigID
	if len(ks.Lookup(l.StaleID)) != 0 {
		return fmt.Errorf("interop: rotated key set still holds config id %d", l.StaleID)
	}
	return nil
}

// startResolver serves the zone and the ECH records over DoH.
func (l *Lab) startResolver(pkiDir string) error {
	zone, probe := filepath.Join(l.Dir, "lab.test.zone"), filepath.Join(l.Dir, "probe.zone")
	if err := os.WriteFile(zone, zoneTemplate, 0o644); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	if err := os.WriteFile(probe, probeZone, 0o644); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	port := uint16(l.Port)
	cfg := resolver.Config{
		Zones:   []resolver.ZoneFile{{File: zone}, {File: probe}},
		KeySets: map[string]string{"current": filepath.Join(l.Dir, "keys", "current"), "stale": filepath.Join(l.Dir, "keys", "stale")},
		Publish: []resolver.PublishRule{
			{Name: SecretName, KeySet: "current", Port: port, ALPN: []string{"h2"}},
			{Name: StaleName, KeySet: "stale", Port: port, ALPN: []string{"h2"}},
			{Name: H3Name, KeySet: "current", Port: port, ALPN: []string{"h3", "h2"}},
		},
		Listen: l.listen(),
		TLS:    resolver.TLSFiles{CADir: pkiDir},
	}
	qf, err := os.OpenFile(filepath.Join(l.Dir, "queries.jsonl"), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	l.Queries = newJSONLog[resolver.QueryLogEntry](qf)
	cfg.QueryLog = l.Queries
	r, err := resolver.Start(cfg)
	if err != nil {
		return err
	}
	l.resolver = r
	doh := r.Addr(resolver.TransportDoH).String()
	ap, err := netip.ParseAddrPort(doh)
	if err != nil {
		return fmt.Errorf("interop: DoH address %q: %w", doh, err)
	}
	l.DoHPort = int(ap.Port())
	l.DoHURL = "https://" + doh + resolver.DoHPath
	return nil
}

// URL returns the page a case loads: the server's trace page for name.
func (l *Lab) URL(name string) string {
	return fmt.Sprintf("https://%s:%d/cdn-cgi/trace", name, l.Port)
}

// Close stops the resolver and the server.
func (l *Lab) Close() error {
	if l.after != nil {
		l.after.close()
	}
	if l.resolver != nil {
		l.resolver.Close()
	}
	if l.server != nil {
		l.server.Close()
	}
	if l.Queries != nil {
		l.Queries.Close()
	}
	if l.Log != nil {
		return l.Log.Close()
	}
	return nil
}
