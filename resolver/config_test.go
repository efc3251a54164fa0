package resolver

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

// TestREADMEConfig loads the JSON configuration shown in README.md, so
// that the example stays a working one.
func TestREADMEConfig(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```json\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no ```json block")
	}
	file := filepath.Join(t.TempDir(), "resolver.json")
	if err := os.WriteFile(file, m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(c.Zones) != 1 || c.KeySets["main"] != "keys/main" || len(c.Publish) != 2 || c.Publish[1].Port != 8443 ||
		!slices.Equal(c.Publish[0].ALPN, []string{"h2", "h3"}) || c.TLS.ECHKeySet != "main" ||
		c.Listen.DoH != c.Listen.DoH3 || c.Listen.DoQ == "" || c.QueryLogFile != "queries.jsonl" ||
		c.PollInterval != Duration(500*time.Millisecond) {
		t.Errorf("README config read as %+v", c)
	}
	// A file that is not JSON is refused naming the file.
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{zones:"), 0o644)
	if _, err := LoadConfig(bad); err == nil || !regexp.MustCompile(regexp.QuoteMeta(bad)).MatchString(err.Error()) {
		t.Errorf("bad JSON: %v", err)
	}
}
