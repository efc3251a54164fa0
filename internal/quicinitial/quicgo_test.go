package quicinitial

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/echlab/echlab/internal/labtest"
	"github.com/quic-go/quic-go"
)

// TestHelloQuicGo reads the random from the Initials of real quic-go
// clients (v1 and v2, with and without ECH) against a quic-go server. The
// oracle is crypto/tls's key log: without ECH it carries the random read
// from the wire; with ECH accepted it carries the inner random, which must
// differ from the outer one on the wire.
func TestHelloQuicGo(t *testing.T) {
	l := labtest.NewTLS(t)
	for _, v := range []quic.Version{quic.Version1, quic.Version2} {
		for _, useECH := range []bool{false, true} {
			sent, logged := quicGoHandshake(t, l, v, useECH)
			var q Hello
			var random []byte
			for _, d := range sent {
				q.Add(d)
				if random = q.Random(); random != nil {
					break
				}
			}
			if random == nil {
				t.Fatalf("%v ECH %v: no random in %d datagrams", v, useECH, len(sent))
			}
			if same := bytes.Equal(random, logged); same == useECH {
				t.Errorf("%v ECH %v: wire random %x, key log random %x", v, useECH, random, logged)
			}
		}
	}
}

// quicGoHandshake runs one quic-go handshake on loopback and returns the
// client's datagrams and the client random of its key log.
func quicGoHandshake(t *testing.T, l *labtest.TLS, v quic.Version, useECH bool) ([][]byte, []byte) {
	t.Helper()
	qc := &quic.Config{Versions: []quic.Version{v}}
	addr := labtest.QUICServer(t, l.Server, qc, false)
	var keylog bytes.Buffer
	cfg := l.Client("secret.lab.test", useECH, "doq")
	cfg.KeyLogWriter = &keylog
	sent, st, err := labtest.QUICDial(t, addr, cfg, qc)
	if err != nil {
		t.Fatalf("quic dial: %v", err)
	}
	if st.ECHAccepted != useECH {
		t.Fatalf("ECH accepted %v", !useECH)
	}
	return sent, keylogRandom(t, keylog.String())
}

// keylogRandom is the client random of the CLIENT_HANDSHAKE_TRAFFIC_SECRET
// line of an NSS key log.
func keylogRandom(t *testing.T, log string) []byte {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "CLIENT_HANDSHAKE_TRAFFIC_SECRET" {
			return unhex(t, f[1])
		}
	}
	t.Fatalf("no CLIENT_HANDSHAKE_TRAFFIC_SECRET in %q", log)
	return nil
}
