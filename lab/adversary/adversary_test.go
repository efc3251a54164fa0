package adversary

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/echlab/echlab/lab/capture"
	"github.com/miekg/dns"
)

// TestConcurrent: the relays call one Adversary from many goroutines;
// every decision, count and sighting is kept (run with -race).
func TestConcurrent(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	answer := pack(t, reply(query(svcName, dns.TypeHTTPS), []dns.RR{httpsRR(h.echList)}))
	q := pack(t, query("secret.lab.test.", dns.TypeA))
	a := mustParse(t, "block-ech+strip-ech+drop-udp")
	const n = 50
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if v := a.Stream(flow("https/shared", "tcp"), h.ech); v != capture.Drop {
				t.Errorf("Stream: %v", v)
			}
			a.Stream(flow("https/shared", "tcp"), h.plain)
			a.Datagram(flow(capture.RoleDo53, "udp"), true, q)
			if out, _ := a.Datagram(flow(capture.RoleDo53, "tcp"), false, answer); len(out) >= len(answer) {
				t.Errorf("answer not rewritten: %d bytes", len(out))
			}
			a.Datagram(flow("https/shared", "udp"), true, []byte{0xc0})
		})
	}
	wg.Wait()
	want := map[string]int{"block-ech": n, "strip-ech": n, "drop-udp": n}
	if got := a.Counts(); !reflect.DeepEqual(got, want) {
		t.Errorf("Counts() = %v, want %v", got, want)
	}
	if got := len(a.Decisions()); got != 5*n {
		t.Errorf("%d decisions, want %d", got, 5*n)
	}
	if got := len(a.Seen()); got != 3*n {
		t.Errorf("%d sightings, want %d", got, 3*n)
	}
}

// TestDecisionJSON: the log's JSON has the flow's keys in lower case and
// reads back.
func TestDecisionJSON(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	a := mustParse(t, "block-ech rst")
	a.Stream(flow("https/split", "tcp"), h.ech)
	d := lastDecision(t, a)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"flow":{"role":"https/split","proto":"tcp","client":"127.0.0.1:50000","relay":"127.0.0.1:8443","backend":"127.0.0.1:9443"}`,
		`"policy":"block-ech rst"`, `"action":"rst"`, `"sni":"public.lab.test"`, `"ech":true`, `"ech_config_id":7`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("%s lacks %s", b, key)
		}
	}
	var back Decision
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Time.Equal(d.Time) || back.Flow != d.Flow || *back.ECHConfigID != 7 || back.ECHPayloadLen != d.ECHPayloadLen {
		t.Errorf("read back %+v, want %+v", back, d)
	}
	s := a.Seen()[0]
	b, _ = json.Marshal(s)
	var sb Sighting
	if err := json.Unmarshal(b, &sb); err != nil || sb != s || !strings.Contains(string(b), `"kind":"sni"`) {
		t.Errorf("sighting %s read back as %+v (%v)", b, sb, err)
	}
}

// TestControlColumn: no policy passes everything and still records what
// it saw.
func TestControlColumn(t *testing.T) {
	h := newHellos(t, "secret.lab.test")
	a := New(nil)
	if v := a.Stream(flow("https/shared", "tcp"), h.plain); v != capture.Pass {
		t.Errorf("control: %v", v)
	}
	if len(a.Counts()) != 0 || len(a.Seen()) != 1 || len(a.Decisions()) != 1 {
		t.Errorf("counts %v, seen %v, decisions %v", a.Counts(), a.Seen(), a.Decisions())
	}
}
