package resolver

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/miekg/dns"
)

// newKeySetDir makes a key set with one published key in a fresh
// directory.
func newKeySetDir(t testing.TB) (string, *ech.KeySet) {
	t.Helper()
	k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 7})
	if err != nil {
		t.Fatal(err)
	}
	ks := &ech.KeySet{}
	ks.Add(k, true)
	dir := t.TempDir()
	if err := ech.SaveKeySet(dir, ks); err != nil {
		t.Fatal(err)
	}
	return dir, ks
}

func configList(t testing.TB, ks *ech.KeySet) []byte {
	t.Helper()
	b, err := ks.ConfigList()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// httpsRecord asks for the HTTPS RRset at name over UDP and returns its
// first record.
func httpsRecord(t testing.TB, r *Running, name string) (*dns.HTTPS, *dns.Msg) {
	t.Helper()
	q := new(dns.Msg).SetQuestion(name, dns.TypeHTTPS).SetEdns0(1232, false)
	resp := exchange(t, "udp", r.Addr(TransportUDP), q)
	for _, rr := range resp.Answer {
		if h, ok := rr.(*dns.HTTPS); ok {
			return h, resp
		}
	}
	t.Fatalf("no HTTPS record for %s: %v", name, resp)
	return nil, nil
}

func echParam(h *dns.HTTPS) []byte {
	for _, kv := range h.Value {
		if e, ok := kv.(*dns.SVCBECHConfig); ok {
			return e.ECH
		}
	}
	return nil
}

func soaSerial(t testing.TB, r *Running, zone string) uint32 {
	t.Helper()
	resp := exchange(t, "udp", r.Addr(TransportUDP), new(dns.Msg).SetQuestion(zone, dns.TypeSOA))
	if len(resp.Answer) != 1 {
		t.Fatalf("no SOA for %s", zone)
	}
	return resp.Answer[0].(*dns.SOA).Serial
}

func publishingResolver(t testing.TB, dir string) *Running {
	return startResolver(t, func(c *Config) {
		c.KeySets = map[string]string{"main": dir}
		c.Publish = []PublishRule{
			{Name: "secret.lab.test.", KeySet: "main", ALPN: []string{"h2", "h3"}},
			{Name: "secret.lab.test", KeySet: "main", Port: 8443, ALPN: []string{"h2"}},
			{Name: "withech.lab.test.", KeySet: "main"},
			{Name: "new.lab.test.", KeySet: "main"},
		}
		c.PollInterval = Duration(50 * time.Millisecond)
	})
}

func TestPublishECH(t *testing.T) {
	dir, ks := newKeySetDir(t)
	want := configList(t, ks)
	r := publishingResolver(t, dir)

	h, resp := httpsRecord(t, r, "secret.lab.test.")
	if !bytes.Equal(echParam(h), want) || h.Priority != 1 || h.Target != "." || !resp.Authoritative {
		t.Errorf("secret.lab.test HTTPS = %v", h)
	}
	if got := rrStrings(resp.Extra); len(got) != 2 || got[0] != "secret.lab.test. A 127.0.0.1" {
		t.Errorf("additional %q, want secret's A and AAAA", got)
	}
	if _, err := ech.ParseConfigList(echParam(h)); err != nil {
		t.Errorf("published ech= does not parse: %v", err)
	}

	// Port 8443: port-prefixed owner, explicit target, port param.
	h, _ = httpsRecord(t, r, "_8443._https.secret.lab.test.")
	if h.Target != "secret.lab.test." || !bytes.Equal(echParam(h), want) || !strings.Contains(h.String(), `port="8443"`) {
		t.Errorf("port-prefixed record %v", h)
	}

	// An existing record keeps its params; its stale ech is replaced.
	h, _ = httpsRecord(t, r, "withech.lab.test.")
	if !bytes.Equal(echParam(h), want) || !strings.Contains(h.String(), `alpn="h2"`) {
		t.Errorf("existing record %v", h)
	}
	// A name with no data gets a ServiceMode record (and exists now).
	h, _ = httpsRecord(t, r, "new.lab.test.")
	if !bytes.Equal(echParam(h), want) {
		t.Errorf("created record %v", h)
	}
	// The rest of the zone is untouched.
	if resp := exchange(t, "udp", r.Addr(TransportUDP), new(dns.Msg).SetQuestion("secret.lab.test.", dns.TypeA)); len(resp.Answer) != 1 {
		t.Errorf("secret A: %v", resp)
	}
}

func TestRotationRepublishes(t *testing.T) {
	dir, ks := newKeySetDir(t)
	r := publishingResolver(t, dir)
	old := configList(t, ks)
	serial := soaSerial(t, r, "lab.test.")
	otherSerial := soaSerial(t, r, "other.test.")

	if _, err := ks.Rotate(ech.KeyOptions{}, time.Hour, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ech.SaveKeySet(dir, ks); err != nil {
		t.Fatal(err)
	}
	want := configList(t, ks)
	if bytes.Equal(old, want) {
		t.Fatal("rotation did not change the config list")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, _ := httpsRecord(t, r, "secret.lab.test.")
		if bytes.Equal(echParam(h), want) {
			break
		}
		if !bytes.Equal(echParam(h), old) {
			t.Fatalf("published neither the old nor the new list: %x", echParam(h))
		}
		if time.Now().After(deadline) {
			t.Fatal("rotation not published within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h, _ := httpsRecord(t, r, "_8443._https.secret.lab.test.")
	if !bytes.Equal(echParam(h), want) {
		t.Errorf("port-prefixed record not republished")
	}
	if got := soaSerial(t, r, "lab.test."); got != serial+1 {
		t.Errorf("lab.test serial %d after rotation, want %d", got, serial+1)
	}
	if got := soaSerial(t, r, "other.test."); got != otherSerial {
		t.Errorf("other.test serial moved to %d", got)
	}
	// The negative answers carry the new serial too.
	resp := exchange(t, "udp", r.Addr(TransportUDP), new(dns.Msg).SetQuestion("nope.lab.test.", dns.TypeA))
	if len(resp.Ns) != 1 || resp.Ns[0].(*dns.SOA).Serial != serial+1 {
		t.Errorf("negative answer SOA %v", resp.Ns)
	}
}

func TestRotationKeepsLastGoodList(t *testing.T) {
	dir, ks := newKeySetDir(t)
	want := configList(t, ks)
	var calls atomic.Int32
	r := startResolver(t, func(c *Config) {
		c.KeySets = map[string]string{"main": dir}
		c.Publish = []PublishRule{{Name: "secret.lab.test.", KeySet: "main"}}
		c.PollInterval = Duration(20 * time.Millisecond)
		c.LoadKeySet = func(d string) ([]byte, error) {
			if calls.Add(1) == 1 {
				return loadKeySetConfigList(d)
			}
			return []byte{0, 4, 1, 2, 3, 4}, nil // not an ECHConfigList
		}
	})
	serial := soaSerial(t, r, "lab.test.")
	ks.Rotate(ech.KeyOptions{}, time.Hour, time.Now())
	if err := ech.SaveKeySet(dir, ks); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); calls.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never reloaded the key set")
		}
	}
	h, _ := httpsRecord(t, r, "secret.lab.test.")
	if !bytes.Equal(echParam(h), want) || soaSerial(t, r, "lab.test.") != serial {
		t.Errorf("a bad key set replaced the published one")
	}
}

func TestPublishMisconfigurations(t *testing.T) {
	dir, _ := newKeySetDir(t)
	tests := []struct {
		name  string
		rules []PublishRule
		load  LoadFunc
		want  string
	}{
		{"unknown key set", []PublishRule{{Name: "secret.lab.test.", KeySet: "nope"}}, nil, `unknown key set "nope"`},
		{"owner in no zone", []PublishRule{{Name: "secret.example.", KeySet: "main"}}, nil, "secret.example. is in no zone"},
		{"invalid ECHConfigList", []PublishRule{{Name: "secret.lab.test.", KeySet: "main"}},
			func(string) ([]byte, error) { return []byte{0, 1, 9}, nil }, `key set "main"`},
		{"AliasMode owner", []PublishRule{{Name: "alias.lab.test.", KeySet: "main"}}, nil, "AliasMode"},
		{"CNAME owner", []PublishRule{{Name: "www.lab.test.", KeySet: "main"}}, nil, "CNAME"},
		{"dot target on port", []PublishRule{{Name: "secret.lab.test.", KeySet: "main", Port: 8443, Target: "."}}, nil, "TargetName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Zones: testZoneFiles, KeySets: map[string]string{"main": dir}, Publish: tt.rules, LoadKeySet: tt.load}
			r, err := Start(cfg)
			if err == nil {
				r.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, ErrPublish) && !errors.Is(err, ErrConfig) {
				t.Errorf("%v wraps neither ErrPublish nor ErrConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q does not say %q", err, tt.want)
			}
		})
	}
	// A key set directory that does not load.
	_, err := Start(Config{Zones: testZoneFiles, KeySets: map[string]string{"main": t.TempDir()}})
	if !errors.Is(err, ErrPublish) || !strings.Contains(err.Error(), "keyset.json") {
		t.Errorf("empty key set dir: %v", err)
	}
}
