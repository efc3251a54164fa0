package resolver

// Reading and answering one HTTP/1.1 request: net/http's server checks
// on top of http.ReadRequest, Expect: 100-continue, the handler call and
// what it leaves of the body.

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// rejectRequest answers a request that could not be read, as net/http
// does: nothing when the peer left or timed out, 431 for headers too
// large, 400 otherwise. It reports whether a response went out.
func (hc *h1Conn) rejectRequest(err error) bool {
	var ne net.Error
	switch {
	case hc.hitLimit:
		hc.writeError("431 Request Header Fields Too Large", "")
	case errors.Is(err, io.EOF), errors.Is(err, errH1Closing), errors.As(err, &ne):
		return false
	default:
		hc.writeError("400 Bad Request", "")
	}
	return true
}

// writeError writes a plain-text error response that closes the
// connection, net/http's format.
func (hc *h1Conn) writeError(status, detail string) {
	body := status
	if detail != "" {
		body += ": " + detail
	}
	hc.bw.WriteString("HTTP/1.1 " + status + "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n" + body)
}

// checkRequest applies the checks net/http's server adds to ReadRequest:
// the Host header (which ReadRequest moves to req.Host: an empty one
// counts as missing here), header names and values.
func checkRequest(req *http.Request) string {
	switch {
	case req.ProtoAtLeast(1, 1) && req.Host == "" && req.Method != http.MethodConnect:
		return "missing required Host header"
	case !httpguts.ValidHostHeader(req.Host):
		return "malformed Host header"
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return "invalid header name"
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return "invalid header value"
			}
		}
	}
	return ""
}

// handle answers one request. keep reports whether the connection goes
// on; clean that the request was read to its end.
func (hc *h1Conn) handle(req *http.Request) (keep, clean bool) {
	if req.ProtoMajor != 1 {
		hc.writeError("505 HTTP Version Not Supported", "unsupported protocol version")
		return false, false
	}
	if msg := checkRequest(req); msg != "" {
		hc.writeError("400 Bad Request", msg)
		return false, false
	}
	closeAfter := req.Close
	if expect := req.Header.Get("Expect"); expect != "" {
		if !strings.EqualFold(expect, "100-continue") || !req.ProtoAtLeast(1, 1) || req.ContentLength == 0 {
			hc.bw.WriteString("HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return false, false
		}
		req.Body = &h1ContinueBody{ReadCloser: req.Body, hc: hc}
		delete(req.Header, "Expect")
	}
	req.RemoteAddr, req.TLS = hc.remote, hc.tls
	req = req.WithContext(hc.ctx)
	if !hc.run(req) {
		return false, false
	}
	hc.mu.Lock()
	closeAfter = closeAfter || hc.closing // shutting down
	hc.mu.Unlock()
	clean = hc.skipBody(req)
	return hc.writeResponse(req, closeAfter || !clean), clean
}

// run calls the handler; a panic closes the connection without a
// response, as with net/http (logged but for http.ErrAbortHandler).
func (hc *h1Conn) run(req *http.Request) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			if p != http.ErrAbortHandler { //nolint:errorlint // as net/http compares it
				hc.srv.errorLog.Printf("resolver: doh: panic serving %s: %v", hc.remote, p)
			}
			ok = false
		}
	}()
	hc.rw.reset()
	hc.srv.handler.ServeHTTP(&hc.rw, req)
	return true
}

// skipBody reads what the handler left of the request body, at most
// h1MaxDiscard octets, so that the next request can be read; it reports
// whether the body ended. A body the client waits for 100 Continue to
// send is not asked for.
func (hc *h1Conn) skipBody(req *http.Request) bool {
	if req.Body == nil || req.Body == http.NoBody {
		return true
	}
	if cb, ok := req.Body.(*h1ContinueBody); ok && !cb.sent {
		return false
	}
	n, err := io.CopyN(io.Discard, req.Body, h1MaxDiscard+1)
	return errors.Is(err, io.EOF) && n <= h1MaxDiscard
}

// h1ContinueBody sends 100 Continue before the body is first read.
type h1ContinueBody struct {
	io.ReadCloser
	hc   *h1Conn
	sent bool
}

// Read asks for the body once, then reads it.
func (b *h1ContinueBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		b.hc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n") // flushed before the body is waited for
	}
	return b.ReadCloser.Read(p)
}
