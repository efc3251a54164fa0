package interop

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// afterServer is a plain HTTP server on 127.0.0.1 whose one page,
// /after?ms=N&to=URL, answers after N milliseconds with a redirect to URL
// (an https URL). A browser given its address (an IP literal: no DNS)
// loads the lab's page N ms after it started, as one that has been
// running a while would (see chromiumProbeWait).
type afterServer struct {
	addr string
	srv  *http.Server
	done chan struct{}
}

// maxAfter bounds an /after wait.
const maxAfter = 30 * time.Second

func startAfterServer() (*afterServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("interop: %w", err)
	}
	a := &afterServer{addr: ln.Addr().String(), done: make(chan struct{})}
	a.srv = &http.Server{Handler: http.HandlerFunc(after), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(a.done)
		a.srv.Serve(ln) //nolint:errcheck // ends with close
	}()
	return a, nil
}

// after is the /after page.
func after(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ms, err := strconv.Atoi(q.Get("ms"))
	to := q.Get("to")
	if r.URL.Path != "/after" || err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > maxAfter ||
		!strings.HasPrefix(to, "https://") {
		http.Error(w, "want /after?ms=N&to=https://…, N at most 30000", http.StatusBadRequest)
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		http.Redirect(w, r, to, http.StatusFound)
	case <-r.Context().Done():
	}
}

// url returns the address of the page that redirects to to after d.
func (a *afterServer) url(d time.Duration, to string) string {
	return fmt.Sprintf("http://%s/after?ms=%d&to=%s", a.addr, d.Milliseconds(), url.QueryEscape(to))
}

func (a *afterServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if a.srv.Shutdown(ctx) != nil {
		a.srv.Close()
	}
	<-a.done
}
