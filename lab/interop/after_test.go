package interop

import (
	"net/http"
	"testing"
	"time"
)

// TestAfterServer: /after redirects to its https URL once the wait is
// over, refuses anything else with 400, and close ends a request still
// waiting.
func TestAfterServer(t *testing.T) {
	a, err := startAfterServer()
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	to := "https://secret.lab.test:4433/cdn-cgi/trace?x=1&y=2"
	start := time.Now()
	resp, err := c.Get(a.url(300*time.Millisecond, to))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != to || time.Since(start) < 300*time.Millisecond {
		t.Errorf("status %d, Location %q after %v; want 302 to %s after 300ms", resp.StatusCode, resp.Header.Get("Location"), time.Since(start), to)
	}
	base := "http://" + a.addr
	for _, bad := range []string{"/after?ms=-1&to=https://x/", "/after?ms=30001&to=https://x/", "/after?ms=1&to=http://x/",
		"/after?ms=x&to=https://x/", "/other?ms=1&to=https://x/"} {
		resp, err := c.Get(base + bad)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", bad, resp.StatusCode)
		}
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := c.Get(a.url(20*time.Second, to))
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start = time.Now()
	a.close()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("close took %v with a request waiting", d)
	}
	if err := <-errc; err == nil {
		t.Error("the request waiting at close got an answer")
	}
}
