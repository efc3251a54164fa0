package server

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/echlab/echlab/ech"
)

// TestSplitUnixBackend: a split front forwards over a Unix socket to a
// backend listening on unix:PATH; ECH is accepted end to end, the
// backend takes the client's address from the front header, and the
// socket file is 0600 and gone after Close.
func TestSplitUnixBackend(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "backend.sock")
	secret := []byte("split lab front secret, 32 bytes")
	bLog, sLog := &syncBuffer{}, &syncBuffer{}
	for _, hrr := range []bool{false, true} {
		backend := startServer(t, Config{Addr: UnixPrefix + sock, Names: []string{"secret.lab.test"}, Mode: "split-backend",
			Log: bLog, FrontSecret: secret, ForceHRR: hrr})
		if backend.Addr() != UnixPrefix+sock {
			t.Fatalf("Addr() = %q, want %q", backend.Addr(), UnixPrefix+sock)
		}
		if st, err := os.Stat(sock); err != nil || st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
			t.Fatalf("socket file: %v %v, want a socket with mode 0600", st, err)
		}
		keys, key := &ech.KeySet{}, newKey(t, 12)
		keys.Add(key, true)
		sp, err := StartSplit(SplitConfig{Keys: keys, CA: testCA(t), Log: sLog, FrontSecret: secret,
			Routes: Routes{"secret.lab.test": backend.Addr()}})
		if err != nil {
			t.Fatal(err)
		}
		c := httpClient(sp.Addr(), clientTLS(t, "secret.lab.test", configList(t, key)))
		resp, in := getJSON(t, c, "secret.lab.test")
		c.CloseIdleConnections()
		if !resp.TLS.ECHAccepted || resp.TLS.HelloRetryRequest != hrr || in.ECH != ECHAccepted ||
			in.InnerSNI != "secret.lab.test" || in.Front != FrontVerified || in.HRR != hrr {
			t.Errorf("hrr=%v: ECHAccepted=%v HRR=%v, backend saw %+v", hrr, resp.TLS.ECHAccepted, resp.TLS.HelloRetryRequest, in)
		}
		recs := sLog.waitRecords(t, 1)
		b := bLog.waitRecords(t, 1)
		if len(recs) != 1 || recs[0].Backend != UnixPrefix+sock || recs[0].ECH != ECHAccepted || recs[0].Error != "" {
			t.Errorf("hrr=%v: relay log %+v", hrr, recs)
		}
		if len(b) != 1 || len(recs) != 1 || b[0].ClientAddr != recs[0].ClientAddr || !strings.HasPrefix(b[0].ClientAddr, "127.0.0.1:") {
			t.Errorf("hrr=%v: backend record %+v, want the client's address from the front header", hrr, b)
		}
		sp.Close()
		backend.Close()
		if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close the socket file is still there: %v", err)
		}
		*bLog, *sLog = syncBuffer{}, syncBuffer{}
	}
}

// TestUnixListen: a stale socket file is replaced, a live one or a file
// that is not a socket is an error, and HTTP/3 cannot listen on a Unix
// socket.
func TestUnixListen(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves the file, as a killed server does
	log := &syncBuffer{}
	s, err := Start(Config{Addr: UnixPrefix + stale, Names: []string{"secret.lab.test"}, CA: testCA(t), Log: log})
	if err != nil {
		t.Fatalf("stale socket: %v", err)
	}
	defer s.Close()
	// A client straight on the socket (no front): served, and logged
	// with the socket's empty peer address.
	ccfg := clientTLS(t, "secret.lab.test", nil)
	ccfg.NextProtos = []string{"http/1.1"}
	tc, err := tls.Dial("unix", stale, ccfg)
	if err != nil {
		t.Fatalf("TLS over the Unix socket: %v", err)
	}
	if _, err := tc.Write([]byte("GET / HTTP/1.1\r\nHost: secret.lab.test\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(tc); !strings.HasPrefix(string(b), "HTTP/1.1 200 ") {
		t.Errorf("answer over the Unix socket: %.80q", b)
	}
	tc.Close()
	if recs := log.waitRecords(t, 1); len(recs) != 1 || recs[0].OuterSNI != "secret.lab.test" || recs[0].Error != "" {
		t.Errorf("record of the Unix socket's connection: %+v", recs)
	}
	if _, err := Start(Config{Addr: UnixPrefix + stale, Names: []string{"secret.lab.test"}}); err == nil ||
		!strings.Contains(err.Error(), "a server is listening there") {
		t.Errorf("second server on a live socket: err = %v", err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Config{Addr: UnixPrefix + file}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file: err = %v", err)
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Errorf("the regular file was changed: %q", b)
	}
	for _, bad := range []Config{{Addr: UnixPrefix}, {Addr: UnixPrefix + filepath.Join(dir, "h3.sock"), HTTP3: true}} {
		if _, err := Start(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("Start(Addr %q, HTTP3 %v) err = %v, want ErrConfig", bad.Addr, bad.HTTP3, err)
		}
	}
	if r, err := ParseRoutes("secret.lab.test=unix:/run/b.sock"); err != nil || r["secret.lab.test"] != "unix:/run/b.sock" {
		t.Errorf("ParseRoutes(unix:) = %v, %v", r, err)
	}
	if _, err := ParseRoutes("secret.lab.test=unix:"); !errors.Is(err, ErrConfig) {
		t.Errorf("ParseRoutes(unix: without a path) err = %v", err)
	}
}

// TestSplitUnixBackendDown: a route to a socket nobody listens on gets the
// client a TLS alert and the relay's record names the backend.
func TestSplitUnixBackendDown(t *testing.T) {
	sock := UnixPrefix + filepath.Join(t.TempDir(), "none.sock")
	keys, key := &ech.KeySet{}, newKey(t, 13)
	keys.Add(key, true)
	sLog := &syncBuffer{}
	sp, err := StartSplit(SplitConfig{Keys: keys, CA: testCA(t), Log: sLog, Routes: Routes{"*": sock}})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	c := httpClient(sp.Addr(), clientTLS(t, "secret.lab.test", configList(t, key)))
	if _, err := c.Get("https://secret.lab.test/"); err == nil || !strings.Contains(err.Error(), "internal error") {
		t.Errorf("GET through a front whose backend is down: err = %v, want a TLS internal_error alert", err)
	}
	if recs := sLog.waitRecords(t, 1); len(recs) != 1 || recs[0].Backend != sock || !strings.Contains(recs[0].Error, "none.sock") {
		t.Errorf("relay log: %+v", recs)
	}
}
