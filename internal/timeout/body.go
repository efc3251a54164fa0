// Package timeout holds the request-body timeout shared by the ECH server's
// HTTPS handler and the resolver's DoH handler.
package timeout

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// Body gives every request body d to arrive: the read deadline is set
// when the handler starts and cleared once the body is read to its end,
// so that net/http's background read cannot cancel a handler still
// answering (which http.Server.ReadTimeout would do on HTTP/1.1).
func Body(h http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			rc := http.NewResponseController(w)
			if rc.SetReadDeadline(time.Now().Add(d)) == nil {
				r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody clears the read deadline once the body is read.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

// Read reads the body; at its end the deadline goes.
func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(func() { b.rc.SetReadDeadline(time.Time{}) }) //nolint:errcheck // the body is done either way
	}
	return n, err
}
