package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/echlab/echlab/ech"
)

// TestSplitIdleTimeout relays an ECH connection through a split with a
// short idle timeout: while requests keep coming (for several idle
// periods) it stays open; once it goes quiet the relay closes it after
// about the idle timeout.
func TestSplitIdleTimeout(t *testing.T) {
	const idle = 300 * time.Millisecond
	k := newKey(t, 3)
	keys := &ech.KeySet{}
	keys.Add(k, true)
	backend := startServer(t, Config{Names: []string{"secret.lab.test"}, Mode: "split-backend"})
	sp, err := StartSplit(SplitConfig{Keys: keys, CA: testCA(t), Routes: Routes{"*": backend.Addr()}, IdleTimeout: idle})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg := clientTLS(t, "secret.lab.test", configList(t, k))
	cfg.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", sp.Addr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	start := time.Now()
	for time.Since(start) < 4*idle {
		time.Sleep(idle / 3)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: secret.lab.test\r\n\r\n"); err != nil {
			t.Fatalf("after %v of activity: %v", time.Since(start), err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %v of activity: %v", time.Since(start), err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	quiet := time.Now()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = br.ReadByte()
	waited := time.Since(quiet)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("idle connection still open after %v", waited)
	}
	if waited < idle-idle/3 || waited > idle+2*time.Second {
		t.Errorf("closed after %v of silence (err %v), want about %v", waited, err, idle)
	}
}
