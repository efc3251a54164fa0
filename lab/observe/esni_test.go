package observe

import (
	"bytes"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/capture"
)

// sendESNIHello sends an ESNI ClientHello built for keys to addr over a
// real TCP connection and reads the server's first bytes.
func sendESNIHello(t testing.TB, addr string, keys *ech.ESNIKeys, publicSNI bool) *ech.ESNIHello {
	t.Helper()
	h, err := ech.BuildESNIClientHello(keys, ech.ESNIHelloOptions{ServerName: "secret.lab.test", ALPN: []string{"h2"}, PublicNameSNI: publicSNI})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(h.Records); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 4096)); err != nil {
		t.Fatalf("no answer from the server: %v", err)
	}
	return h
}

func newESNISet(t testing.TB, version uint16) *ech.ESNIKeySet {
	t.Helper()
	set, err := ech.GenerateESNIKeys(ech.ESNIKeyOptions{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// recordESNIFlows records a draft-02 ESNI ClientHello (no cleartext SNI)
// and a draft-03 one (public_name in the clear) sent to a crypto/tls
// server over loopback.
func recordESNIFlows(t testing.TB, d02, d03 *ech.ESNIKeySet) string {
	t.Helper()
	l := newLabTLS(t)
	rec := capture.NewRecorder()
	addr := serveTLS(t, rec, l.Server)
	sendESNIHello(t, addr, d02.Keys, false)
	sendESNIHello(t, addr, d03.Keys, true)
	time.Sleep(50 * time.Millisecond) // let the server side's records land
	return writeCapture(t, rec)
}

// FuzzCompareESNI feeds mutated captures of ESNI ClientHellos to Compare
// with the ESNI keys that open the seeds (derived from a fixed seed, so
// that every fuzz worker has the same keys).
func FuzzCompareESNI(f *testing.F) {
	rnd := rand.NewChaCha8([32]byte{'e', 's', 'n', 'i'})
	now := func() time.Time { return time.Unix(1764000000, 0) }
	var sets []*ech.ESNIKeySet
	for _, v := range []uint16{ech.ESNIVersionDraft02, ech.ESNIVersionDraft03} {
		set, err := ech.GenerateESNIKeys(ech.ESNIKeyOptions{Version: v, Rand: rnd, Now: now})
		if err != nil {
			f.Fatal(err)
		}
		sets = append(sets, set)
	}
	seed, err := os.ReadFile(recordESNIFlows(f, sets[0], sets[1]))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Compare(bytes.NewReader(b), CompareOptions{ESNIKeys: sets})
		if err != nil {
			return
		}
		for _, fl := range rep.Flows {
			if fl.ESNIDecrypted && (!fl.ESNI || fl.InnerSNI == "") {
				t.Errorf("flow decrypted without an ESNI extension or a name: %+v", fl.FlowESNI)
			}
			if fl.ESNI && fl.ECH != ECHESNI && len(fl.Warnings) == 0 {
				t.Errorf("ESNI flow with ECH %q and no warning", fl.ECH)
			}
		}
	})
}

func TestCompareESNI(t *testing.T) {
	d02, d03 := newESNISet(t, ech.ESNIVersionDraft02), newESNISet(t, ech.ESNIVersionDraft03)
	path := recordESNIFlows(t, d02, d03)
	rep := compareFile(t, path, CompareOptions{})
	if len(rep.Flows) != 2 {
		t.Fatalf("%d flows, want 2", len(rep.Flows))
	}
	for i, f := range rep.Flows {
		set := []*ech.ESNIKeySet{d02, d03}[i]
		digest, err := set.Keys.RecordDigest(ech.TLSAES128GCMSHA256)
		if err != nil {
			t.Fatal(err)
		}
		if !f.ESNI || f.ECH != ECHESNI || f.InnerSNI != "" || f.ESNIDecrypted {
			t.Errorf("flow %d without keys: esni %v ECH %q inner %q", i, f.ESNI, f.ECH, f.InnerSNI)
		}
		if f.ESNIRecordDigest != hex.EncodeToString(digest) || f.ESNISuite != ech.TLSAES128GCMSHA256 ||
			f.ESNIKeyShareGroup != ech.GroupX25519 || f.ESNIPaddedLen != 260 || f.ESNIEncLen != 16+260+16 {
			t.Errorf("flow %d observer view: %+v", i, f.FlowESNI)
		}
		if strings.Join(f.ALPN, ",") != "h2" || f.ServerVersion != 0x0304 || len(f.Warnings) != 0 {
			t.Errorf("flow %d: ALPN %v server version %#x warnings %v", i, f.ALPN, f.ServerVersion, f.Warnings)
		}
	}
	if rep.Flows[0].SNI != "" || rep.Flows[1].SNI != "public.lab.test" {
		t.Errorf("cleartext SNI %q, %q; want none for draft-02 and the public name for draft-03", rep.Flows[0].SNI, rep.Flows[1].SNI)
	}
	s := rep.Summary[0]
	if s.ESNIFlows != 2 || strings.Join(s.ALPN, ",") != "h2" || slices.ContainsFunc(s.Names, func(n NameExposure) bool { return n.Name == "secret.lab.test" }) {
		t.Errorf("summary without keys: %+v", s)
	}

	rep = compareFile(t, path, CompareOptions{ESNIKeys: []*ech.ESNIKeySet{d03, d02}})
	for i, f := range rep.Flows {
		if f.InnerSNI != "secret.lab.test" || !f.ESNIDecrypted || len(f.Warnings) != 0 {
			t.Errorf("flow %d with keys: inner %q decrypted %v warnings %v", i, f.InnerSNI, f.ESNIDecrypted, f.Warnings)
		}
	}
	want := NameExposure{Name: "secret.lab.test", Source: SourceNothing, Flows: 2}
	if s := rep.Summary[0]; !slices.Contains(s.Names, want) {
		t.Errorf("summary with keys: %+v", s.Names)
	}
	// Keys of another server match no record digest: no name, no warning.
	rep = compareFile(t, path, CompareOptions{ESNIKeys: []*ech.ESNIKeySet{newESNISet(t, 0)}})
	if f := rep.Flows[0]; f.InnerSNI != "" || len(f.Warnings) != 0 {
		t.Errorf("other keys: inner %q warnings %v", f.InnerSNI, f.Warnings)
	}
	var table, csv strings.Builder
	TableOptions{Wide: true}.WriteTable(&table, rep) // every column: the ESNI parameters
	WriteCSV(&csv, rep)
	if !strings.Contains(table.String(), "esni suite=0x1301 group=x25519 enc=292") || !strings.Contains(csv.String(), ",true,0x1301,X25519,") {
		t.Errorf("table/CSV lack the ESNI view:\n%s\n%s", table.String(), csv.String())
	}
}

// TestTsharkESNI checks with tshark that the ESNI ClientHellos carry
// extension 0xffce and no server_name (draft-02) or the public name only
// (draft-03), as Compare says.
func TestTsharkESNI(t *testing.T) {
	tshark := testutil.NeedTool(t, "tshark")
	path := recordESNIFlows(t, newESNISet(t, ech.ESNIVersionDraft02), newESNISet(t, ech.ESNIVersionDraft03))
	rep := compareFile(t, path, CompareOptions{})
	lines := 0
	for _, h := range labtest.TsharkHellos(t, tshark, path) {
		f := flowByClientPort(t, rep, h.Port)
		types := h.Types
		if !slices.Contains(types, "65486") || slices.Contains(types, "65037") || h.SNI != f.SNI || !f.ESNI {
			t.Errorf("port %d: tshark SNI %q types %v; Compare SNI %q ESNI %v", h.Port, h.SNI, types, f.SNI, f.ESNI)
		}
		if slices.Contains(types, "0") != (f.SNI != "") {
			t.Errorf("port %d: server_name extension present=%v, Compare SNI %q", h.Port, slices.Contains(types, "0"), f.SNI)
		}
		lines++
	}
	if lines != 2 {
		t.Errorf("tshark saw %d ClientHellos, want 2", lines)
	}
	// tshark must not call the ESNI ClientHello malformed.
	assertTsharkClean(t, tshark, path)
}

// BenchmarkCompareESNI measures Compare on a capture of two ESNI flows,
// with the keys that decrypt them.
func BenchmarkCompareESNI(b *testing.B) {
	d02, d03 := newESNISet(b, ech.ESNIVersionDraft02), newESNISet(b, ech.ESNIVersionDraft03)
	data, err := os.ReadFile(recordESNIFlows(b, d02, d03))
	if err != nil {
		b.Fatal(err)
	}
	opts := CompareOptions{ESNIKeys: []*ech.ESNIKeySet{d02, d03}}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Compare(bytes.NewReader(data), opts); err != nil {
			b.Fatal(err)
		}
	}
}
