package adversary

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/resolver"
)

// labZone is the lab's zone as lab/stack_resolver.go writes it (the names
// this package's tests ask for).
const labZone = "$ORIGIN lab.test.\n$TTL 60\n" +
	"@ IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60\n" +
	"@ IN NS ns.lab.test.\n" +
	"ns IN A 127.0.0.1\npublic IN A 127.0.0.1\nsecret IN A 127.0.0.1\n"

// startResolver starts the lab's resolver on a loopback UDP port,
// publishing a fresh key set at secret.lab.test port 8443 as the lab
// does, and returns its address.
func startResolver(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	zone := filepath.Join(dir, "lab.test.zone")
	if err := os.WriteFile(zone, []byte(labZone), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 5})
	if err != nil {
		t.Fatal(err)
	}
	ks := &ech.KeySet{}
	ks.Add(k, true)
	keys := filepath.Join(dir, "keys")
	if err := ech.SaveKeySet(keys, ks); err != nil {
		t.Fatal(err)
	}
	r, err := resolver.Start(resolver.Config{
		Zones:   []resolver.ZoneFile{{File: zone, Origin: "lab.test."}},
		KeySets: map[string]string{"main": keys},
		Publish: []resolver.PublishRule{{Name: "secret.lab.test.", KeySet: "main", Port: 8443,
			Target: "public.lab.test.", ALPN: []string{"h3", "h2"}}},
		Listen: resolver.Listen{UDP: "127.0.0.1:0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.Addr(resolver.TransportUDP).String()
}
