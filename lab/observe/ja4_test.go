package observe

import "testing"

// TestJA4FoxIOExample checks the worked example of the FoxIO JA4 README:
// its ja4_r raw string and its hashed form
// t13d1516h2_8daaf6152771_e5627efa2ab1.
func TestJA4FoxIOExample(t *testing.T) {
	ciphers := []uint16{0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f, 0x0035}
	exts := []uint16{0x0000, 0x0017, 0xff01, 0x000a, 0x000b, 0x0023, 0x0010, 0x0005, 0x000d, 0x0012, 0x0033, 0x002d, 0x002b, 0x001b, 0x0015, 0x4469}
	sigalgs := []uint16{0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}
	got := ja4(false, "13", true, ciphers, exts, "h2", sigalgs)
	if want := "t13d1516h2_8daaf6152771_e5627efa2ab1"; got != want {
		t.Fatalf("ja4 = %s, want %s", got, want)
	}
}

func TestJA4Parts(t *testing.T) {
	for _, c := range []struct{ alpn, want string }{{"", "00"}, {"h3", "h3"}, {"http/1.1", "h1"}, {"dot", "dt"}, {"\xab\xcd", "ad"}} {
		if got := ja4ALPN(c.alpn); got != c.want {
			t.Errorf("ja4ALPN(%q) = %q, want %q", c.alpn, got, c.want)
		}
	}
	got := ja4(true, "13", false, nil, nil, "", nil)
	if want := "q13i000000_000000000000_000000000000"; got != want {
		t.Errorf("empty hello: %s, want %s", got, want)
	}
}
