package resolver

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/miekg/dns"
)

// newESNIDir makes ESNI keys in a fresh directory.
func newESNIDir(t testing.TB, dir string) *ech.ESNIKeySet {
	t.Helper()
	set, err := ech.GenerateESNIKeys(ech.ESNIKeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ech.SaveESNIKeys(dir, set); err != nil {
		t.Fatal(err)
	}
	return set
}

func esniResolver(t testing.TB, dir string) *Running {
	return startResolver(t, func(c *Config) {
		c.ESNIKeySets = map[string]string{"legacy": dir}
		c.PublishESNI = []ESNIPublishRule{{Name: "secret.lab.test", KeySet: "legacy", TTL: 30}}
		c.PollInterval = Duration(50 * time.Millisecond)
	})
}

// esniTXTValue asks for _esni.secret.lab.test TXT over UDP and decodes it.
func esniTXTValue(t testing.TB, r *Running) []byte {
	t.Helper()
	resp := exchange(t, "udp", r.Addr(TransportUDP), new(dns.Msg).SetQuestion("_esni.secret.lab.test.", dns.TypeTXT))
	if len(resp.Answer) != 1 || !resp.Authoritative {
		t.Fatalf("_esni TXT answer %v", resp)
	}
	txt := resp.Answer[0].(*dns.TXT)
	if txt.Hdr.Ttl != 30 {
		t.Errorf("TTL %d, want 30", txt.Hdr.Ttl)
	}
	raw, err := ech.DecodeESNIKeysText(strings.Join(txt.Txt, ""))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var digTXTRE = regexp.MustCompile(`(?m)^_esni\.secret\.lab\.test\.\s+\d+\s+IN\s+TXT\s+(.+)$`)

// TestESNITXTWithDig reads the published _esni TXT record back with dig and
// checks that it decodes to the key set's ESNIKeys byte for byte.
func TestESNITXTWithDig(t *testing.T) {
	bin := testutil.NeedTool(t, "dig")
	dir := t.TempDir()
	set := newESNIDir(t, dir)
	r := esniResolver(t, dir)
	_, port, _ := net.SplitHostPort(r.Addr(TransportUDP).String())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "@127.0.0.1", "-p", port, "+norecurse", "+timeout=5", "+tries=1",
		"_esni.secret.lab.test.", "TXT").CombinedOutput()
	if err != nil {
		t.Fatalf("dig: %v\n%s", err, out)
	}
	m := digTXTRE.FindStringSubmatch(string(out))
	if m == nil || !strings.Contains(string(out), "NOERROR") {
		t.Fatalf("no _esni TXT answer:\n%s", out)
	}
	raw, err := ech.DecodeESNIKeysText(m[1])
	if err != nil {
		t.Fatalf("dig's TXT %s: %v", m[1], err)
	}
	if !bytes.Equal(raw, set.Keys.Raw) {
		t.Errorf("TXT decodes to %x\nwant          %x", raw, set.Keys.Raw)
	}
	k, err := ech.ParseESNIKeys(raw)
	if err != nil || k.CheckChecksum() != nil || k.PublicName != "public.lab.test" {
		t.Errorf("published ESNIKeys %+v: %v", k, err)
	}
}

// TestESNIRotationRepublishes rotates the ESNI keys on disk and waits for
// the new TXT value and a serial bump of lab.test only.
func TestESNIRotationRepublishes(t *testing.T) {
	dir := t.TempDir()
	old := newESNIDir(t, dir)
	r := esniResolver(t, dir)
	if got := esniTXTValue(t, r); !bytes.Equal(got, old.Keys.Raw) {
		t.Fatalf("published %x, want %x", got, old.Keys.Raw)
	}
	serial, otherSerial := soaSerial(t, r, "lab.test."), soaSerial(t, r, "other.test.")
	cur := newESNIDir(t, dir)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := esniTXTValue(t, r)
		if bytes.Equal(got, cur.Keys.Raw) {
			break
		}
		if !bytes.Equal(got, old.Keys.Raw) {
			t.Fatalf("published neither the old nor the new keys: %x", got)
		}
		if time.Now().After(deadline) {
			t.Fatal("rotation not published within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := soaSerial(t, r, "lab.test."); got != serial+1 {
		t.Errorf("lab.test serial %d after rotation, want %d", got, serial+1)
	}
	if got := soaSerial(t, r, "other.test."); got != otherSerial {
		t.Errorf("other.test serial moved to %d", got)
	}
	// A bad update is refused and the keys stay.
	if err := r.Publisher.UpdateESNI("legacy", []byte{0xff, 0x02, 0}); !errors.Is(err, ErrPublish) {
		t.Errorf("bad ESNIKeys: err %v, want ErrPublish", err)
	}
	if got := esniTXTValue(t, r); !bytes.Equal(got, cur.Keys.Raw) {
		t.Errorf("bad update changed the record")
	}
}

func TestESNIPublishMisconfigurations(t *testing.T) {
	dir := t.TempDir()
	newESNIDir(t, dir)
	tests := []struct {
		name  string
		mod   func(*Config)
		isErr error
	}{
		{"unknown key set", func(c *Config) {
			c.PublishESNI = []ESNIPublishRule{{Name: "secret.lab.test", KeySet: "nope"}}
		}, ErrConfig},
		{"missing directory", func(c *Config) {
			c.ESNIKeySets = map[string]string{"legacy": t.TempDir()}
		}, ErrPublish},
		{"name in no zone", func(c *Config) {
			c.ESNIKeySets = map[string]string{"legacy": dir}
			c.PublishESNI = []ESNIPublishRule{{Name: "secret.example", KeySet: "legacy"}}
		}, ErrPublish},
		{"bad name", func(c *Config) {
			c.ESNIKeySets = map[string]string{"legacy": dir}
			c.PublishESNI = []ESNIPublishRule{{Name: "", KeySet: "legacy"}}
		}, ErrPublish},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Zones: testZoneFiles, Listen: Listen{UDP: "127.0.0.1:0"}}
			tt.mod(&cfg)
			r, err := Start(cfg)
			if err == nil {
				r.Close()
				t.Fatal("started")
			}
			if !errors.Is(err, tt.isErr) {
				t.Errorf("err %v, want %v", err, tt.isErr)
			}
		})
	}
}
