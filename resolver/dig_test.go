package resolver

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/testutil"
)

var digECHRE = regexp.MustCompile(`ech="?([A-Za-z0-9+/=]+)"?`)

// TestDigAndKdig queries the running resolver with Debian's dig and kdig
// over every transport they speak (kdig also DoQ), and checks that the ech= they print is
// the key set's ECHConfigList, byte for byte.
func TestDigAndKdig(t *testing.T) {
	dir, ks := newKeySetDir(t)
	want := configList(t, ks)
	caDir := t.TempDir()
	r := startResolver(t, func(c *Config) {
		c.KeySets = map[string]string{"main": dir}
		c.Publish = []PublishRule{{Name: "secret.lab.test.", KeySet: "main", ALPN: []string{"h2", "h3"}}}
		c.Listen.DoT = "127.0.0.1:0"
		c.Listen.DoH = "127.0.0.1:0"
		c.Listen.DoQ = "127.0.0.1:0"
		c.TLS = TLSFiles{CADir: caDir}
	})
	port := func(transport string) string {
		_, p, _ := net.SplitHostPort(r.Addr(transport).String())
		return p
	}
	ca := r.CAFile
	tests := []struct {
		name, tool string
		args       []string
	}{
		{"dig udp", "dig", []string{"-p", port("udp"), "+notcp"}},
		{"dig tcp", "dig", []string{"-p", port("tcp"), "+tcp"}},
		{"dig tls verified", "dig", []string{"-p", port("dot"), "+tls", "+tls-ca=" + ca, "+tls-hostname=resolver.lab.test"}},
		{"dig tls unverified", "dig", []string{"-p", port("dot"), "+tls"}},
		{"dig https POST", "dig", []string{"-p", port("doh"), "+https", "+tls-ca=" + ca, "+tls-hostname=resolver.lab.test"}},
		{"dig https GET", "dig", []string{"-p", port("doh"), "+https-get", "+tls-ca=" + ca, "+tls-hostname=resolver.lab.test"}},
		{"kdig udp", "kdig", []string{"-p", port("udp"), "+notcp"}},
		{"kdig tls", "kdig", []string{"-p", port("dot"), "+tls-ca=" + ca, "+tls-hostname=resolver.lab.test"}},
		{"kdig https", "kdig", []string{"-p", port("doh"), "+https", "+tls-ca=" + ca, "+tls-hostname=resolver.lab.test"}},
		// +quic last: kdig applies options in order and +tls-* means TLS over TCP.
		{"kdig quic", "kdig", []string{"-p", port("doq"), "+tls-ca=" + ca, "+tls-hostname=resolver.lab.test", "+quic"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := testutil.NeedTool(t, tt.tool)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"@127.0.0.1"}, tt.args...)
			retry := "+tries=1"
			if tt.tool == "kdig" {
				retry = "+retry=0"
			}
			args = append(args, "+norecurse", "+timeout=5", retry, "secret.lab.test.", "HTTPS")
			out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("%s %s: %v\n%s", tt.tool, strings.Join(args, " "), err, out)
			}
			text := string(out)
			if !strings.Contains(text, "NOERROR") || !regexp.MustCompile(`(?i)flags: qr aa`).MatchString(text) {
				t.Errorf("not an authoritative NOERROR answer:\n%s", text)
			}
			m := digECHRE.FindStringSubmatch(text)
			if m == nil {
				t.Fatalf("no ech= in output:\n%s", text)
			}
			got, err := base64.StdEncoding.DecodeString(m[1])
			if err != nil {
				t.Fatalf("ech= is not base64: %v", err)
			}
			if _, err := ech.ParseConfigList(got); err != nil {
				t.Errorf("ech= does not parse: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("ech= %x\nwant  %x", got, want)
			}
			if strings.HasSuffix(tt.name, "quic") && !strings.Contains(text, ";; QUIC session (QUICv1)") {
				t.Errorf("kdig did not speak DoQ:\n%s", text)
			}
			if tt.tool == "kdig" && strings.Contains(tt.name, "tls") && !strings.Contains(text, "Received 468 B") {
				t.Errorf("kdig pads DoT queries; the answer should be padded to 468 octets:\n%s", text)
			}
		})
	}
}
