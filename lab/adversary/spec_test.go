package adversary

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/echlab/echlab/lab/capture"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec string
		want []Policy
	}{
		{"none", nil},
		{" None ", nil},
		{"block-sni Secret.Lab.Test.", []Policy{{Kind: BlockSNI, Name: "secret.lab.test", Verdict: capture.Drop}}},
		{"block-sni *.lab.test rst", []Policy{{Kind: BlockSNI, Name: "*.lab.test", Verdict: capture.Reset}}},
		{"block-ech", []Policy{{Kind: BlockECH, Verdict: capture.Drop}}},
		{"block-ech RST", []Policy{{Kind: BlockECH, Verdict: capture.Reset}}},
		{"block-ech-public public.lab.test drop", []Policy{{Kind: BlockECHPublic, Name: "public.lab.test", Verdict: capture.Drop}}},
		{"block-ech-size", []Policy{{Kind: BlockECHSize, Sizes: GreaseSizes, Verdict: capture.Drop}}},
		{"block-ech-size 240,144,144", []Policy{{Kind: BlockECHSize, Sizes: []int{144, 240}, Verdict: capture.Drop}}},
		{"block-ech-size rst", []Policy{{Kind: BlockECHSize, Sizes: GreaseSizes, Verdict: capture.Reset}}},
		{"block-ech-size 200 rst", []Policy{{Kind: BlockECHSize, Sizes: []int{200}, Verdict: capture.Reset}}},
		{"strip-ech", []Policy{{Kind: StripECH}}},
		{"drop-https-rr", []Policy{{Kind: DropHTTPSRR}}},
		{"poison secret.lab.test 192.0.2.1", []Policy{{Kind: Poison, Name: "secret.lab.test", Addr: netip.MustParseAddr("192.0.2.1")}}},
		{"poison secret.lab.test ::ffff:192.0.2.1", []Policy{{Kind: Poison, Name: "secret.lab.test", Addr: netip.MustParseAddr("192.0.2.1")}}},
		{"poison secret.lab.test 2001:db8::1", []Policy{{Kind: Poison, Name: "secret.lab.test", Addr: netip.MustParseAddr("2001:db8::1")}}},
		{"block-doh", []Policy{{Kind: BlockDoH, Verdict: capture.Reset}}},
		{"block-doh drop", []Policy{{Kind: BlockDoH, Verdict: capture.Drop}}},
		{"block-doh 127.0.0.1", []Policy{{Kind: BlockDoH, Addr: netip.MustParseAddr("127.0.0.1"), Verdict: capture.Reset}}},
		{"block-doh [::1]:853 drop", []Policy{{Kind: BlockDoH, Addr: netip.MustParseAddr("::1"), Port: 853, Verdict: capture.Drop}}},
		{"block-doh resolver.lab.test", []Policy{{Kind: BlockDoH, Name: "resolver.lab.test", Verdict: capture.Reset}}},
		{"drop-udp", []Policy{{Kind: DropUDP, Port: HTTPSPort}}},
		{"drop-udp 443", []Policy{{Kind: DropUDP, Port: HTTPSPort}}},
		{"drop-udp 853", []Policy{{Kind: DropUDP, Port: 853}}},
		{"rst-after-hello", []Policy{{Kind: RstAfterHello}}},
		{"strip-ech + block-doh", []Policy{{Kind: StripECH}, {Kind: BlockDoH, Verdict: capture.Reset}}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.spec)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		spec     string
		sentinel error
		says     string // the message names what is wrong
	}{
		{"", ErrEmpty, "empty column"},
		{"   ", ErrEmpty, "empty column"},
		{"strip-ech+", ErrEmpty, "empty policy"},
		{"block-everything", ErrUnknownKind, `unknown kind "block-everything"`},
		{"none+strip-ech", ErrUnknownKind, "whole column"},
		{"all", ErrUnknownKind, "whole column"},
		{"block-sni", ErrArgCount, "missing argument NAME"},
		{"block-sni rst", ErrArgCount, "missing argument"},
		{"block-ech-public", ErrArgCount, "missing argument"},
		{"poison secret.lab.test", ErrArgCount, "missing argument ADDR"},
		{"strip-ech now", ErrArgCount, `extra argument "now"`},
		{"block-ech public.lab.test", ErrArgCount, `extra argument "public.lab.test"`},
		{"block-sni a.test b.test", ErrArgCount, `extra argument "b.test"`},
		{"drop-udp 443 853", ErrArgCount, `extra argument "853"`},
		{"block-sni bad/name", ErrBadArg, `bad NAME "bad/name"`},
		{"block-sni a..b", ErrBadArg, "bad NAME"},
		{"block-sni *", ErrBadArg, "bad NAME"},
		{"poison secret.lab.test 300.1.1.1", ErrBadArg, `bad ADDR "300.1.1.1"`},
		{"poison secret.lab.test example.com", ErrBadArg, "bad ADDR"},
		{"poison secret.lab.test fe80::1%eth0", ErrBadArg, "bad ADDR"},
		{"block-doh 1.2.3.4:99999", ErrBadArg, `bad ADDR "1.2.3.4:99999"`},
		{"block-doh 1.2.3", ErrBadArg, "bad ADDR"},
		{"block-doh 1.2.3.4:0", ErrBadArg, "bad ADDR"},
		{"block-doh bad/name", ErrBadArg, "bad NAME"},
		{"drop-udp http", ErrBadArg, `bad PORT "http"`},
		{"drop-udp 0", ErrBadArg, "bad PORT"},
		{"drop-udp 65536", ErrBadArg, "bad PORT"},
		{"block-ech-size 144,,176", ErrBadArg, "bad SIZES"},
		{"block-ech-size 0", ErrBadArg, "bad SIZES"},
		{"block-ech-size 70000", ErrBadArg, "bad SIZES"},
		{"block-ech-size big", ErrBadArg, "bad SIZES"},
	}
	for _, tt := range tests {
		ps, err := Parse(tt.spec)
		if err == nil {
			t.Errorf("Parse(%q) = %v, want an error", tt.spec, ps)
			continue
		}
		var se *SpecError
		if !errors.As(err, &se) || !errors.Is(err, ErrSpec) || !errors.Is(err, tt.sentinel) {
			t.Errorf("Parse(%q): %v (%T) is not a SpecError wrapping %v", tt.spec, err, err, tt.sentinel)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "adversary: ") || !strings.Contains(msg, tt.says) ||
			!strings.Contains(msg, strings.TrimSpace(tt.spec)) {
			t.Errorf("Parse(%q) error %q: want the spec and %q in it", tt.spec, msg, tt.says)
		}
		if errors.Is(tt.sentinel, ErrArgCount) || errors.Is(tt.sentinel, ErrBadArg) {
			if !strings.Contains(msg, "usage: ") {
				t.Errorf("Parse(%q) error %q gives no usage", tt.spec, msg)
			}
		}
	}
}

func TestParseGrid(t *testing.T) {
	all := len(DefaultGrid)
	tests := []struct {
		spec string
		cols []string // Join of each column
	}{
		{"none", []string{"none"}},
		{"all", DefaultGrid},
		{"censor", DefaultGrid},
		{"none,all", append([]string{"none"}, DefaultGrid...)},
		{"none, strip-ech+block-doh ,block-sni secret.lab.test rst",
			[]string{"none", "strip-ech+block-doh", "block-sni secret.lab.test rst"}},
		{"block-ech-size 144,176 rst,none", []string{"block-ech-size 144,176 rst", "none"}},
		{"block-ech-size 144, 176,strip-ech", []string{"block-ech-size 144,176", "strip-ech"}},
	}
	for _, tt := range tests {
		grid, err := ParseGrid(tt.spec)
		if err != nil {
			t.Errorf("ParseGrid(%q): %v", tt.spec, err)
			continue
		}
		var got []string
		for _, col := range grid {
			got = append(got, Join(col))
		}
		if !reflect.DeepEqual(got, tt.cols) {
			t.Errorf("ParseGrid(%q) = %q, want %q", tt.spec, got, tt.cols)
		}
	}
	if g, _ := ParseGrid("all"); len(g) != all {
		t.Errorf("all gives %d columns, want %d", len(g), all)
	}
	for _, bad := range []string{"", "none,", ",none", "none,,strip-ech", "none,block-sni", "strip-ech,bogus"} {
		if _, err := ParseGrid(bad); !errors.Is(err, ErrSpec) {
			t.Errorf("ParseGrid(%q): %v, want a spec error", bad, err)
		}
	}
	if _, err := ParseGrid("none,,strip-ech"); err == nil || !strings.Contains(err.Error(), "column 2 is empty") {
		t.Errorf("empty column: %v", err)
	}
}

// TestStringRoundTrip: every DefaultGrid column is canonical (String gives
// it back) and String's output parses to the same policies, for the
// defaults and for every non-default argument.
func TestStringRoundTrip(t *testing.T) {
	specs := append([]string{
		"block-sni *.lab.test rst", "block-ech rst", "block-ech-public public.lab.test rst",
		"block-ech-size 100,200 rst", "poison secret.lab.test 2001:db8::1", "block-doh drop",
		"block-doh 127.0.0.1", "block-doh [::1]:853", "block-doh resolver.lab.test drop",
		"drop-udp 853", "strip-ech+drop-https-rr+poison a.test 192.0.2.7",
	}, DefaultGrid...)
	for _, spec := range specs {
		ps, err := Parse(spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", spec, err)
		}
		if got := Join(ps); got != spec {
			t.Errorf("Join(Parse(%q)) = %q", spec, got)
		}
		again, err := Parse(Join(ps))
		if err != nil || !reflect.DeepEqual(again, ps) {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", Join(ps), again, err, ps)
		}
	}
}

// TestDefaultGridCoversEveryKind: every kind in at least one column.
func TestDefaultGridCoversEveryKind(t *testing.T) {
	seen := map[Kind]int{}
	for _, spec := range DefaultGrid {
		ps, err := Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			seen[p.Kind]++
		}
	}
	for k := range rules {
		if seen[k] == 0 {
			t.Errorf("kind %s is in no column of DefaultGrid", k)
		}
	}
	if len(kindNames) != len(rules) {
		t.Errorf("kindNames has %d kinds, rules %d", len(kindNames), len(rules))
	}
}
