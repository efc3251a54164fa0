package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/echlab/echlab/client"
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
	"github.com/echlab/echlab/resolver"
)

// The soak test runs a pool of concurrent ECH clients (crypto/tls and
// echlab's client, over TCP and QUIC) against `echlab server` and `echlab
// split` processes while `echlab keygen --rotate --grace 3s`, run as a
// separate process every 2 s, rotates the key folder they serve from, and
// an echlab resolver republishes it. Every handshake must end accepted
// with a key that was valid at that moment, or rejected (with a config
// that was not valid any more) and then accepted after one retry with the
// retry configs, which must be current. It asserts zero acceptances past a
// key's grace and zero rejections of a current config, and prints the
// counts (and appends them to the file ECHLAB_SOAK_REPORT names, which
// .ci/run prints). ECHLAB_SOAK sets the duration (default 60s).

const (
	soakRotateEvery = 2 * time.Second
	soakGrace       = 3 * time.Second
	soakWorkers     = 10
)

// soakDuration is how long the soak ran, for its report.
var soakDuration time.Duration

// appendFile appends s to the file name (created 0644).
func appendFile(name, s string) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// soakSnapshot is the key folder's manifest as written by one keygen run.
type soakSnapshot struct {
	at   time.Time // keygen started: the manifest is not older than this
	keys map[uint8]soakKey
}

type soakKey struct {
	published bool
	retireAt  time.Time
}

// soakTimeline is every manifest the test wrote, in order.
type soakTimeline struct {
	mu    sync.Mutex
	snaps []soakSnapshot
}

func (tl *soakTimeline) add(s soakSnapshot) {
	tl.mu.Lock()
	tl.snaps = append(tl.snaps, s)
	tl.mu.Unlock()
}

// current returns the snapshots that may have been on disk at t: the
// newest one started by t, and the one before it (the newer may not have
// been renamed into place yet).
func (tl *soakTimeline) current(t time.Time) []soakSnapshot {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for i := len(tl.snaps) - 1; i >= 0; i-- {
		if !tl.snaps[i].at.After(t) {
			if i > 0 {
				return []soakSnapshot{tl.snaps[i], tl.snaps[i-1]}
			}
			return tl.snaps[i : i+1]
		}
	}
	return nil
}

// validAt reports whether a key with config id is published or within
// its grace at t in the given snapshot.
func (s soakSnapshot) validAt(id uint8, t time.Time) bool {
	k, ok := s.keys[id]
	return ok && (k.published || t.Before(k.retireAt))
}

// mayBeValid: in some snapshot possibly current at t, id is valid at t.
func (tl *soakTimeline) mayBeValid(id uint8, t time.Time) bool {
	for _, s := range tl.current(t) {
		if s.validAt(id, t) {
			return true
		}
	}
	return false
}

// validInNewest: in the newest snapshot started by t, id is valid at t.
// A client that got id from DNS got it from a manifest already on disk,
// so the server had to know it by then.
func (tl *soakTimeline) validInNewest(id uint8, t time.Time) bool {
	snaps := tl.current(t)
	return len(snaps) > 0 && snaps[0].validAt(id, t)
}

// mayBePublished: id is published in the snapshot current at t.
func (tl *soakTimeline) mayBePublished(id uint8, t time.Time) bool {
	for _, s := range tl.current(t) {
		if k, ok := s.keys[id]; ok && k.published {
			return true
		}
	}
	return false
}

func readSoakManifest(t *testing.T, dir string, at time.Time) soakSnapshot {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ech.KeySetManifest))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Keys []struct {
			ConfigID  uint8      `json:"config_id"`
			Published bool       `json:"published"`
			RetireAt  *time.Time `json:"retire_at"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	s := soakSnapshot{at: at, keys: map[uint8]soakKey{}}
	for _, k := range m.Keys {
		sk := soakKey{published: k.Published}
		if k.RetireAt != nil {
			sk.retireAt = *k.RetireAt
		}
		s.keys[k.ConfigID] = sk
	}
	return s
}

// soakAttempt is one handshake (and at most one retry) by a worker.
type soakAttempt struct {
	worker   string
	start    time.Time
	end      time.Time
	offered  uint8
	accepted bool    // the first handshake accepted ECH
	rejected bool    // the first handshake was rejected with retry configs
	retryIDs []uint8 // config ids of the retry configs
	retryOK  bool    // the retry was accepted
	retryAt  time.Time
	retryEnd time.Time
	err      error
}

func TestSoakRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: not with -short")
	}
	dur := 60 * time.Second
	if v := os.Getenv("ECHLAB_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("ECHLAB_SOAK=%q: %v", v, err)
		}
		dur = d
	}
	soakDuration = dur
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	pkiDir := filepath.Join(dir, "pki")
	tl := &soakTimeline{}
	begin := time.Now()
	if r := runCLI(t, dir, time.Minute, "keygen", "--keys", keys); r.code != 0 {
		t.Fatalf("keygen: %s", r.stderr)
	}
	tl.add(readSoakManifest(t, keys, begin))
	ca, err := pki.LoadOrCreate(pkiDir)
	if err != nil {
		t.Fatal(err)
	}

	// The shared server (TCP and QUIC), a baseline backend and the split
	// front, all following the same key folder.
	addrRe := `(127\.0\.0\.1:\d+)`
	_, shared := startDaemon(t, time.Minute, regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(tcp `+addrRe),
		"server", "--addr", "127.0.0.1:0", "--pki", pkiDir, "--keys", keys, "--poll", "100ms", "--h3", "--log", "")
	_, backend := startDaemon(t, time.Minute, regexp.MustCompile(`^echlab server: https://public\.lab\.test/ \(tcp `+addrRe),
		"server", "--addr", "127.0.0.1:0", "--pki", pkiDir, "--baseline", "--names", "hidden.lab.test", "--log", "")
	_, split := startDaemon(t, time.Minute, regexp.MustCompile(`^echlab split: `+addrRe),
		"split", "--addr", "127.0.0.1:0", "--pki", pkiDir, "--keys", keys, "--poll", "100ms", "--route", "hidden.lab.test="+backend, "--log", "")

	dnsURL := startSoakResolver(t, dir, keys, shared, split)
	stub, err := resolver.NewClient(dnsURL, resolver.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	// Attempts are collected as they come: a fixed buffer filled up once
	// the handshakes got faster, and the workers blocked on it while the
	// test waited for them.
	results := make(chan soakAttempt, 1024)
	var attempts []soakAttempt
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for a := range results {
			attempts = append(attempts, a)
		}
	}()
	w := &soakWorld{stub: stub, roots: ca.Pool(), shared: shared, split: split}
	for i := range soakWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(ctx, i, results)
		}()
	}
	// Rotate from outside every 2 s, as a separate process, exactly as
	// the README says.
	rotations := 0
	tick := time.NewTicker(soakRotateEvery)
rotate:
	for {
		select {
		case <-ctx.Done():
			break rotate
		case <-tick.C:
		}
		at := time.Now()
		r := runCLI(t, dir, time.Minute, "keygen", "--keys", keys, "--rotate", "--grace", soakGrace.String())
		if r.code != 0 {
			t.Errorf("keygen --rotate: exit %d: %s", r.code, r.stderr)
			continue
		}
		tl.add(readSoakManifest(t, keys, at))
		rotations++
	}
	tick.Stop()
	wg.Wait()
	close(results)
	<-collected
	soakJudge(t, tl, attempts, rotations)
}

// startSoakResolver runs an echlab resolver in process over Do53 UDP,
// publishing the key folder for secret.lab.test (the shared server's
// port) and hidden.lab.test (the split front's port), polling every
// 100 ms. It returns the udp:// URL.
func startSoakResolver(t *testing.T, dir, keys, shared, split string) string {
	t.Helper()
	zone := "$ORIGIN lab.test.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n" +
		"public IN A 127.0.0.1\nsecret IN A 127.0.0.1\nhidden IN A 127.0.0.1\n"
	zf := filepath.Join(dir, "lab.test.zone")
	if err := os.WriteFile(zf, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	port := func(addr string) uint16 {
		_, p, _ := splitHostPortSoak(addr)
		return p
	}
	cfg := resolver.Config{
		Zones:        []resolver.ZoneFile{{Origin: "lab.test.", File: zf}},
		KeySets:      map[string]string{"k": keys},
		Publish:      []resolver.PublishRule{{Name: "secret.lab.test", KeySet: "k", Port: port(shared)}, {Name: "hidden.lab.test", KeySet: "k", Port: port(split)}},
		Listen:       resolver.Listen{UDP: "127.0.0.1:0"},
		PollInterval: resolver.Duration(100 * time.Millisecond),
	}
	r, err := resolver.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	for _, a := range r.Addrs() {
		if a.Transport == "udp" {
			return a.URL
		}
	}
	t.Fatal("resolver has no UDP listener")
	return ""
}

func splitHostPortSoak(addr string) (string, uint16, error) {
	re := regexp.MustCompile(`^(.*):(\d+)$`)
	m := re.FindStringSubmatch(addr)
	if m == nil {
		return "", 0, fmt.Errorf("bad address %q", addr)
	}
	p, err := strconv.Atoi(m[2])
	return m[1], uint16(p), err
}

// soakWorld is what the workers share.
type soakWorld struct {
	stub          resolver.Client
	roots         *x509.CertPool
	shared, split string
}

// A worker kind: who connects, to which server, how, and whether it
// keeps its config for a while (stale) instead of asking DNS each time.
type soakKind struct {
	name  string
	split bool // to the split front (hidden.lab.test) instead of the shared server
	quic  bool
	stale bool // reuse a config list fetched 1–5 s earlier
	echl  bool // echlab's client (else crypto/tls)
}

var soakKinds = []soakKind{
	{name: "tls-tcp-shared"},
	{name: "tls-tcp-shared-stale", stale: true},
	{name: "tls-tcp-split", split: true},
	{name: "tls-tcp-split-stale", split: true, stale: true},
	{name: "echlab-tcp-shared", echl: true},
	{name: "echlab-quic-shared", echl: true, quic: true},
	{name: "echlab-tcp-split", echl: true, split: true},
	{name: "echlab-tcp-shared-stale", echl: true, stale: true},
	{name: "echlab-quic-shared-stale", echl: true, quic: true, stale: true},
	{name: "tls-tcp-shared-2"},
}

func (w *soakWorld) run(ctx context.Context, i int, out chan<- soakAttempt) {
	k := soakKinds[i%len(soakKinds)]
	host, addr := "secret.lab.test", w.shared
	if k.split {
		host, addr = "hidden.lab.test", w.split
	}
	var held []byte
	var heldUntil time.Time
	rng := rand.New(rand.NewPCG(uint64(i), 7))
	for ctx.Err() == nil {
		list := held
		if !k.stale || time.Now().After(heldUntil) || list == nil {
			l, err := w.lookup(host, addr)
			if err != nil {
				out <- soakAttempt{worker: k.name, start: time.Now(), end: time.Now(), err: fmt.Errorf("dns: %w", err)}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			list, held = l, l
			heldUntil = time.Now().Add(time.Second + time.Duration(rng.Int64N(int64(4*time.Second))))
		}
		// Each handshake runs to its end: the end of the soak stops the
		// loop, never a handshake halfway.
		var a soakAttempt
		if k.echl {
			a = w.echlabFetch(k, host, addr, list)
		} else {
			a = w.tlsHandshake(host, addr, list)
		}
		a.worker = k.name
		out <- a
	}
}

// lookup asks the resolver for the HTTPS record of host at addr's port
// and returns its ech= value.
func (w *soakWorld) lookup(host, addr string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, port, _ := splitHostPortSoak(addr)
	m := new(dns.Msg)
	m.SetQuestion(fmt.Sprintf("_%d._https.%s.", port, host), dns.TypeHTTPS)
	resp, err := w.stub.Exchange(ctx, m)
	if err != nil {
		return nil, err
	}
	for _, rr := range resp.Answer {
		h, ok := rr.(*dns.HTTPS)
		if !ok {
			continue
		}
		for _, kv := range h.Value {
			if e, ok := kv.(*dns.SVCBECHConfig); ok {
				return e.ECH, nil
			}
		}
	}
	return nil, fmt.Errorf("no ech in the HTTPS answer for %s: %v", host, resp.Answer)
}

// listIDs returns the config ids of an ECHConfigList, read directly from
// the bytes (2-byte list length, then version, length, config_id, …) so
// that the check does not depend on the parser under test.
func listIDs(list []byte) []uint8 {
	var ids []uint8
	if len(list) < 2 {
		return nil
	}
	for b := list[2:]; len(b) >= 5; {
		n := int(b[2])<<8 | int(b[3])
		ids = append(ids, b[4])
		if len(b) < 4+n {
			break
		}
		b = b[4+n:]
	}
	return ids
}

// firstID is the config id of the first config in an ECHConfigList.
func firstID(list []byte) uint8 {
	if ids := listIDs(list); len(ids) > 0 {
		return ids[0]
	}
	return 0
}

// tlsHandshake is crypto/tls: one handshake with the list, and on
// rejection one more with the retry configs.
func (w *soakWorld) tlsHandshake(host, addr string, list []byte) soakAttempt {
	a := soakAttempt{start: time.Now(), offered: firstID(list)}
	accepted, retry, err := w.tlsOnce(host, addr, list)
	a.end = time.Now()
	switch {
	case err == nil:
		a.accepted = accepted
		if !accepted {
			a.err = errors.New("handshake completed without ECH")
		}
		return a
	case retry == nil:
		a.err = err
		return a
	}
	a.rejected, a.retryIDs, a.retryAt = true, listIDs(retry), time.Now()
	accepted, _, err = w.tlsOnce(host, addr, retry)
	a.retryEnd = time.Now()
	a.retryOK = err == nil && accepted
	if err != nil {
		a.err = fmt.Errorf("retry: %w", err)
	}
	return a
}

func (w *soakWorld) tlsOnce(host, addr string, list []byte) (bool, []byte, error) {
	d := tls.Dialer{Config: &tls.Config{ServerName: host, RootCAs: w.roots, EncryptedClientHelloConfigList: list,
		MinVersion: tls.VersionTLS13}}
	hctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		var rej *tls.ECHRejectionError
		if errors.As(err, &rej) && len(rej.RetryConfigList) > 0 {
			return false, rej.RetryConfigList, err
		}
		return false, nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().ECHAccepted, nil, nil
}

// echlabFetch is echlab's client: a whole GET with the given list (so
// the test knows which config it offered), retrying once itself.
func (w *soakWorld) echlabFetch(k soakKind, host, addr string, list []byte) soakAttempt {
	a := soakAttempt{start: time.Now(), offered: firstID(list)}
	_, port, _ := splitHostPortSoak(addr)
	o := client.Options{ConfigList: list, ConnectTo: addr, RootCAs: w.roots, HTTP3: k.quic, Timeout: 15 * time.Second}
	res, err := client.Fetch(context.Background(), fmt.Sprintf("https://%s:%d/", host, port), o)
	a.end = time.Now()
	if res != nil && res.Retried {
		a.rejected = true
		a.retryAt, a.retryEnd = a.end, a.end
		if res.RetryConfigID != nil {
			a.retryIDs = []uint8{*res.RetryConfigID}
		}
		a.retryOK = err == nil && res.ECH == client.ECHAccepted
	} else {
		a.accepted = err == nil && res.ECH == client.ECHAccepted
	}
	if err != nil {
		a.err = err
	} else if res.ECH != client.ECHAccepted {
		a.err = fmt.Errorf("ech %q", res.ECH)
	}
	return a
}

// soakJudge checks every attempt against the key timeline and prints the
// counts.
func soakJudge(t *testing.T, tl *soakTimeline, results []soakAttempt, rotations int) {
	counts := map[string]map[string]int{}
	bump := func(worker, what string) {
		if counts[worker] == nil {
			counts[worker] = map[string]int{}
		}
		counts[worker][what]++
	}
	var pastGrace, falseReject, staleRetry, failed, total int
	for _, a := range results {
		total++
		switch {
		case a.accepted:
			bump(a.worker, "accepted")
			if !tl.mayBeValid(a.offered, a.start) && !tl.mayBeValid(a.offered, a.end) {
				pastGrace++
				t.Errorf("%s: accepted config id %d at %s, which no key set valid then had", a.worker, a.offered, a.start.Format("15:04:05.000"))
			}
		case a.rejected:
			bump(a.worker, "rejected-retried")
			if tl.validInNewest(a.offered, a.start) && tl.validInNewest(a.offered, a.end) {
				falseReject++
				t.Errorf("%s: config id %d rejected at %s although it was current", a.worker, a.offered, a.start.Format("15:04:05.000"))
			}
			for _, id := range a.retryIDs {
				if !tl.mayBePublished(id, a.end) && !tl.mayBePublished(id, a.start) {
					staleRetry++
					t.Errorf("%s: retry config id %d at %s is not a published key", a.worker, id, a.end.Format("15:04:05.000"))
				}
			}
			if !a.retryOK {
				failed++
				t.Errorf("%s: retry after rejection failed: %v", a.worker, a.err)
			}
		default:
			bump(a.worker, "failed")
			failed++
			t.Errorf("%s: handshake at %s failed: %v", a.worker, a.start.Format("15:04:05.000"), a.err)
		}
	}
	var sum strings.Builder
	fmt.Fprintf(&sum, "soak (%s, race %v): %d handshakes, %d rotations; accepted past grace %d, false rejections %d, stale retry configs %d, failures %d\n",
		soakDuration, raceEnabled, total, rotations, pastGrace, falseReject, staleRetry, failed)
	for _, k := range soakKinds {
		if c := counts[k.name]; c != nil {
			fmt.Fprintf(&sum, "  %-26s accepted %5d  rejected→retried %4d  failed %d\n", k.name, c["accepted"], c["rejected-retried"], c["failed"])
		}
	}
	t.Log("\n" + sum.String())
	if f := os.Getenv("ECHLAB_SOAK_REPORT"); f != "" {
		if err := appendFile(f, sum.String()); err != nil {
			t.Errorf("ECHLAB_SOAK_REPORT: %v", err)
		}
	}
	if total == 0 || rotations < 3 {
		t.Errorf("soak too small: %d handshakes, %d rotations", total, rotations)
	}
	for _, k := range soakKinds {
		if counts[k.name]["accepted"] == 0 {
			t.Errorf("%s: no accepted handshake", k.name)
		}
	}
}
