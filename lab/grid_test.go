package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/adversary"
)

// runTestGrid runs a grid of the given rows and column specs in a fresh
// folder and returns its result; it fails the test on an error.
func runTestGrid(t *testing.T, rows []string, specs ...string) *GridResult {
	t.Helper()
	cols, err := ParseGridColumns(strings.Join(specs, ","))
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunGrid(context.Background(), GridConfig{OutDir: t.TempDir(), Columns: cols, Rows: rows})
	if err != nil {
		t.Fatalf("RunGrid: %v", err)
	}
	return res
}

// wantCell checks a cell's outcome (and error class, when given).
func wantCell(t *testing.T, g *GridResult, row, col, outcome, class string) *GridCell {
	t.Helper()
	c := g.Cell(row, col)
	if c == nil {
		t.Fatalf("no cell %s × %s", row, col)
	}
	if c.Outcome != outcome || (class != "" && c.ErrorClass != class) {
		t.Errorf("%s × %s: %s (%s: %s), want %s (%s)", row, col, c.Outcome, c.ErrorClass, c.Error, outcome, class)
	}
	return c
}

// TestGridCensor runs every client row against the control column and
// the policies that act on TLS and DNS, and checks each cell against the
// RFCs' expectation and against what it must be here: the strip only
// downgrades the Do53 rows, an SNI block on the secret name only stops
// GREASE, blocking ECH fails every ECH client closed and GREASE with it.
func TestGridCensor(t *testing.T) {
	specs := []string{"block-sni " + SecretName + " rst", "block-ech rst", "block-ech-size rst", "block-ech-public " + PublicName + " rst",
		"strip-ech", "drop-https-rr", "poison " + SecretName + " 127.0.0.66", "poison " + PublicName + " 127.0.0.66", "block-doh", "strip-ech+block-doh", "rst-after-hello"}
	g := runTestGrid(t, nil, specs...)
	if want := len(GridRows) * (len(specs) + 1); len(g.Cells) != want {
		t.Fatalf("%d cells, want %d", len(g.Cells), want)
	}
	for _, c := range g.Cells {
		if !c.AsExpected {
			t.Errorf("%s × %s: %s (%s), expected %v: %s", c.Row, c.Column, c.Outcome, c.Error, c.Expected, c.Why)
		}
	}
	if g.Deviations != 0 {
		t.Errorf("Deviations = %d", g.Deviations)
	}
	// The control column: every ECH client hides the name in the SNI.
	for _, r := range GridRows {
		c := g.Cell(r.Name, "none")
		if r.Client == GridClientGREASE {
			wantCell(t, g, r.Name, "none", GridGREASE, "")
			if !slices.Contains(c.Leaks, "sni") {
				t.Errorf("GREASE: leaks %v, want sni", c.Leaks)
			}
			continue
		}
		wantCell(t, g, r.Name, "none", GridECH, "")
		if slices.Contains(c.Leaks, "sni") {
			t.Errorf("%s × none: the adversary saw the true name in an SNI", r.Name)
		}
		if dns := slices.Contains(c.Leaks, "dns"); dns != (r.DNS == DNSDo53) {
			t.Errorf("%s × none: leaks %v: a Do53 row leaks the name in its query, a DoH row does not", r.Name, c.Leaks)
		}
	}
	// strip-ech: the downgrade on the Do53 rows only.
	wantCell(t, g, "echlab/do53", "strip-ech", GridFailed, "dns")
	wantCell(t, g, "echlab/doh", "strip-ech", GridECH, "")
	for _, row := range []string{"echlab-fallback/do53", "crypto-tls/do53"} {
		c := wantCell(t, g, row, "strip-ech", GridClear, "")
		if !slices.Contains(c.Leaks, "sni") {
			t.Errorf("%s × strip-ech: leaks %v, want the SNI", row, c.Leaks)
		}
		if c.Counts["strip-ech"] == 0 {
			t.Errorf("%s × strip-ech: the adversary counts no strip: %v", row, c.Counts)
		}
	}
	for _, row := range []string{"echlab-fallback/doh", "crypto-tls/doh", "echlab-h3/doh"} {
		c := wantCell(t, g, row, "strip-ech", GridECH, "")
		if c.Counts["strip-ech"] != 0 {
			t.Errorf("%s × strip-ech: the adversary stripped something on a DoH row: %v", row, c.Counts)
		}
	}
	// strip-ech with DoH blocked too: every row loses ECH or fails.
	wantCell(t, g, "echlab-fallback/doh", "strip-ech+block-doh", GridFailed, "")
	wantCell(t, g, "echlab-fallback/do53", "strip-ech+block-doh", GridClear, "")
	// block-sni on the secret name: only GREASE carries it.
	wantCell(t, g, "echlab-grease/do53", "block-sni "+SecretName+" rst", GridFailed, "")
	wantCell(t, g, "echlab/doh", "block-sni "+SecretName+" rst", GridECH, "")
	// block-ech: every ECH ClientHello, over TCP and QUIC, GREASE as
	// collateral; the fallback client does not fall back on a reset (a
	// network failure is not a rejection). Over QUIC the reset is a black
	// hole: the HTTP/3 client times out.
	for _, row := range []string{"echlab/do53", "echlab-fallback/doh", "crypto-tls/doh", "echlab-grease/do53", "echlab-h3/doh"} {
		c := wantCell(t, g, row, "block-ech rst", GridFailed, "")
		if c.Counts["block-ech rst"] == 0 || !strings.Contains(c.Saw, "rst") {
			t.Errorf("%s × block-ech: the adversary's log does not show its reset: counts %v, saw %q", row, c.Counts, c.Saw)
		}
	}
	h3 := wantCell(t, g, "echlab-h3/doh", "block-ech rst", GridFailed, "timeout")
	if !strings.Contains(h3.Saw, "black hole") || !strings.Contains(h3.Saw, "SNI "+PublicName) {
		t.Errorf("echlab-h3/doh × block-ech: the adversary's log does not show the QUIC ClientHello it black-holed: %q", h3.Saw)
	}
	wantCell(t, g, "echlab-h3/doh", "rst-after-hello", GridFailed, "timeout")
	wantCell(t, g, "echlab-h3/doh", "block-ech-public "+PublicName+" rst", GridFailed, "timeout")
	wantCell(t, g, "echlab-h3/doh", "block-sni "+SecretName+" rst", GridECH, "")
	// block-ech-size: crypto/tls's real ECH payload is not one of
	// BoringSSL's GREASE lengths, echlab's GREASE payload is.
	wantCell(t, g, "echlab/doh", "block-ech-size rst", GridFailed, "")
	c := wantCell(t, g, "echlab-grease/do53", "block-ech-size rst", GridGREASE, "")
	var greaseLens []int
	for _, d := range c.Decisions {
		if d.ECH {
			greaseLens = append(greaseLens, d.ECHPayloadLen)
		}
	}
	if len(greaseLens) == 0 || !slices.Contains(adversary.GreaseSizes, greaseLens[0]) || greaseLens[0] != 144 {
		t.Errorf("GREASE payload lengths %v: want 144, one of %v", greaseLens, adversary.GreaseSizes)
	}
	// The README says why: Go 1.26 loses the name-length padding, so with
	// maximum_name_length 64 the payload is 127 bytes, not 32k+16 (a Go
	// with CL 765446, 1.27, pads as RFC 9849 §6.1.3 says: update both).
	realLens := 0
	for _, d := range g.Cell("echlab/doh", "block-ech-size rst").Decisions {
		if d.ECH && d.Flow.Proto == "tcp" {
			realLens++
			if d.Action != "rst" || d.ECHPayloadLen != 127 {
				t.Errorf("real ECH payload of %d bytes: %s; README.md says 127, blocked", d.ECHPayloadLen, d.Action)
			}
		}
	}
	if realLens == 0 {
		t.Error("no real ECH ClientHello in the block-ech-size cell")
	}
	// block-ech-public spares GREASE (its SNI is not the public name).
	wantCell(t, g, "echlab-grease/do53", "block-ech-public "+PublicName+" rst", GridGREASE, "")
	wantCell(t, g, "echlab/doh", "block-ech-public "+PublicName+" rst", GridFailed, "")
	// poison: a refused connection on the Do53 rows when it hits the
	// name they connect to, the HTTPS record's TargetName; the secret
	// name's A record is never asked.
	wantCell(t, g, "echlab/do53", "poison "+PublicName+" 127.0.0.66", GridFailed, "connect")
	wantCell(t, g, "echlab/doh", "poison "+PublicName+" 127.0.0.66", GridECH, "")
	wantCell(t, g, "echlab/do53", "poison "+SecretName+" 127.0.0.66", GridECH, "")

	// The output folder: grid.json reads back, grid.md and the
	// adversary's log name every cell.
	b, err := os.ReadFile(filepath.Join(g.OutDir, FileGridJSON))
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Schema int        `json:"schema"`
		Grid   GridResult `json:"grid"`
	}
	if err := json.Unmarshal(b, &back); err != nil || back.Schema != 1 || len(back.Grid.Cells) != len(g.Cells) {
		t.Fatalf("grid.json: %v, schema %d, %d cells", err, back.Schema, len(back.Grid.Cells))
	}
	md, err := os.ReadFile(filepath.Join(g.OutDir, FileGridMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{" echlab/do53 |", "| `strip-ech+block-doh` |", "RFC 9849 §8.1.1"} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("grid.md lacks %q", s)
		}
	}
	log, err := os.ReadFile(filepath.Join(g.OutDir, FileAdversary))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(log, []byte(`"column":"block-ech rst"`)) {
		t.Errorf("adversary.jsonl has no decision of the block-ech column:\n%.2000s", log)
	}
}

// TestGridDropHoldsUntilTimeout: a dropped ClientHello is a black hole:
// the client gives up on its handshake timeout, not on a reset; the QUIC
// row loses to block-ech (its ClientHello read from the Initials) and to
// drop-udp the same way.
func TestGridDropHoldsUntilTimeout(t *testing.T) {
	g := runTestGrid(t, []string{"echlab/doh", "echlab-h3/doh"}, "block-ech", "drop-udp")
	for _, row := range []string{"echlab/doh", "echlab-h3/doh"} {
		c := wantCell(t, g, row, "block-ech", GridFailed, "timeout")
		if c.Duration < gridHandshakeTimeout {
			t.Errorf("%s gave up after %v, before its %v handshake timeout", row, c.Duration, gridHandshakeTimeout)
		}
	}
	wantCell(t, g, "echlab-h3/doh", "drop-udp", GridFailed, "")
	wantCell(t, g, "echlab/doh", "drop-udp", GridECH, "")
	for _, c := range g.Cells {
		if !c.AsExpected {
			t.Errorf("%s × %s: %s, expected %v", c.Row, c.Column, c.Outcome, c.Expected)
		}
	}
}

// TestGridAgreesWithCapture: what the adversary logged it saw and did is
// what tshark reads in the capture. Every ClientHello it blocked is in
// the capture from the same client port with the same SNI and ECH
// extension, none of them got a ServerHello, the reset ones (and only
// they) end with an RST to the client; every ClientHello in
// the capture with the true name in its SNI during the block-sni column
// was blocked.
func TestGridAgreesWithCapture(t *testing.T) {
	tshark := testutil.NeedTool(t, "tshark")
	specs := []string{"block-sni " + SecretName + " rst", "block-ech"}
	g := runTestGrid(t, []string{"echlab/doh", "echlab-grease/do53", "crypto-tls/do53"}, specs...)
	type blocked struct {
		sni    string
		ech    bool
		action string
	}
	byPort := map[uint16]blocked{}
	var relayPorts []uint16
	for _, c := range g.Cells {
		for _, d := range c.Decisions {
			if d.Action != "drop" && d.Action != "rst" || d.SNI == "" {
				continue
			}
			byPort[d.Flow.Client.Port()] = blocked{d.SNI, d.ECH, d.Action}
			relayPorts = append(relayPorts, d.Flow.Relay.Port())
		}
	}
	if len(byPort) < 4 {
		t.Fatalf("only %d blocked ClientHellos logged: %+v", len(byPort), g.Cells)
	}
	capturePath := filepath.Join(g.OutDir, FileCapture)
	hellos := labtest.TsharkHellos(t, tshark, capturePath, relayPorts...)
	seen := map[uint16]labtest.TsharkHello{}
	for _, h := range hellos {
		seen[h.Port] = h
	}
	for port, b := range byPort {
		h, ok := seen[port]
		if !ok {
			t.Errorf("the adversary blocked a ClientHello from port %d (SNI %s) that tshark does not find", port, b.sni)
			continue
		}
		if h.SNI != b.sni || slices.Contains(h.Types, "65037") != b.ech {
			t.Errorf("port %d: tshark reads SNI %q ECH %v, the adversary logged %q ECH %v", port, h.SNI, slices.Contains(h.Types, "65037"), b.sni, b.ech)
		}
	}
	// The true name in the clear: GREASE's ClientHellos, one per column;
	// only the control column's went through.
	unblocked := 0
	for _, h := range hellos {
		if _, ok := byPort[h.Port]; h.SNI == SecretName && !ok {
			unblocked++
		}
	}
	if unblocked != 1 {
		t.Errorf("tshark sees %d ClientHellos with the true name that the adversary let through, want 1 (the control column's GREASE)", unblocked)
	}
	// No blocked connection got a ServerHello.
	args := []string{"-r", capturePath}
	for _, p := range relayPorts {
		args = append(args, "-d", "tcp.port=="+strconv.Itoa(int(p))+",tls")
	}
	args = append(args, "-Y", "tls.handshake.type == 2", "-T", "fields", "-e", "tcp.dstport")
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	// Reset connections end with an RST to the client, dropped ones not.
	rstArgs := append(slices.Clone(args[:len(args)-6]), "-Y", "tcp.flags.reset == 1", "-T", "fields", "-e", "tcp.dstport")
	rstOut, err := exec.Command(tshark, rstArgs...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	resets := map[uint16]bool{}
	for _, f := range strings.Fields(string(rstOut)) {
		p, _ := strconv.Atoi(f)
		resets[uint16(p)] = true
	}
	for port, b := range byPort {
		if resets[port] != (b.action == "rst") {
			t.Errorf("port %d: the adversary logged %s, tshark sees an RST to it: %v", port, b.action, resets[port])
		}
	}
	answered := 0
	for _, f := range strings.Fields(string(out)) {
		p, _ := strconv.Atoi(f)
		if b, ok := byPort[uint16(p)]; ok {
			t.Errorf("the blocked ClientHello from port %d (SNI %s) got a ServerHello", p, b.sni)
		}
		answered++
	}
	if answered == 0 {
		t.Error("tshark finds no ServerHello at all: the control column's connections are missing from the capture")
	}
}
