package resolver

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// h1ResponseWriter is the http.ResponseWriter of an HTTP/1.1 connection,
// reused for each of its requests: it keeps the status, headers and body
// until the handler returns, so that the length is always known.
type h1ResponseWriter struct {
	hc     *h1Conn
	hdr    http.Header
	status int
	body   []byte
}

func (rw *h1ResponseWriter) reset() {
	clear(rw.hdr)
	rw.status = 0
	if cap(rw.body) > maxPooledBuffer {
		rw.body = nil
	}
	rw.body = rw.body[:0]
}

// Header returns the response headers.
func (rw *h1ResponseWriter) Header() http.Header { return rw.hdr }

// WriteHeader sets the status; informational (1xx) ones are not sent.
func (rw *h1ResponseWriter) WriteHeader(code int) {
	if rw.status == 0 && code >= 200 {
		rw.status = code
	}
}

// Write appends to the body.
func (rw *h1ResponseWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	rw.body = append(rw.body, b...)
	return len(b), nil
}

// SetReadDeadline sets the connection's read deadline, for
// http.ResponseController (the request body's read timeout).
func (rw *h1ResponseWriter) SetReadDeadline(t time.Time) error {
	rw.hc.armed = true
	return rw.hc.conn.SetReadDeadline(t)
}

// writeResponse writes the handler's response into the connection's
// buffer as net/http would: status line, the handler's headers, and when
// it left them out Content-Type (sniffed), Content-Length and Date, the
// Connection header, then the body (none for HEAD, 204 and 304). It
// reports whether the connection stays open.
func (hc *h1Conn) writeResponse(req *http.Request, closeAfter bool) bool {
	rw := &hc.rw
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	head := req.Method == http.MethodHead
	body := rw.body
	if head || !bodyAllowed(rw.status) {
		body = nil
	}
	bw := hc.bw
	hc.statusLine(req.ProtoAtLeast(1, 1), rw.status)
	for k, vv := range rw.hdr {
		switch {
		case k == "Transfer-Encoding" || k == "Connection" && closeConnection(vv, &closeAfter):
			continue
		case k == "Content-Length" && !head:
			continue // ours below, the length of what is written
		case !httpguts.ValidHeaderFieldName(k):
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			if strings.ContainsAny(v, "\r\n") {
				v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			}
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if _, ok := rw.hdr["Content-Type"]; !ok && len(rw.body) > 0 && bodyAllowed(rw.status) {
		bw.WriteString("Content-Type: " + http.DetectContentType(rw.body) + "\r\n")
	}
	sentLength := false
	if _, ok := rw.hdr["Content-Length"]; ok && head {
		sentLength = true
	} else if bodyAllowed(rw.status) && (len(rw.body) > 0 || !head) {
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(rw.body)), 10))
		bw.WriteString("\r\n")
		sentLength = true
	}
	if _, ok := rw.hdr["Date"]; !ok {
		hc.writeDate()
	}
	keep := hc.connectionHeader(req, closeAfter, sentLength)
	bw.WriteString("\r\n")
	bw.Write(body)
	return keep
}

// closeConnection sets *closeAfter when the handler's Connection header
// asks to close; it reports true: the header itself is not copied.
func closeConnection(vv []string, closeAfter *bool) bool {
	if httpguts.HeaderValuesContainsToken(vv, "close") {
		*closeAfter = true
	}
	return true
}

// connectionHeader writes the Connection header net/http would and
// reports whether the connection stays open: HTTP/1.1 says close when it
// closes, HTTP/1.0 says keep-alive when the client asked for it and the
// length was sent.
func (hc *h1Conn) connectionHeader(req *http.Request, closeAfter, sentLength bool) bool {
	if req.ProtoAtLeast(1, 1) {
		if closeAfter {
			hc.bw.WriteString("Connection: close\r\n")
		}
		return !closeAfter
	}
	if closeAfter || !sentLength { // HTTP/1.0 closes unless it asked for keep-alive
		return false
	}
	hc.bw.WriteString("Connection: keep-alive\r\n")
	return true
}

// statusLine writes "HTTP/1.1 200 OK", or HTTP/1.0 to HTTP/1.0 clients.
func (hc *h1Conn) statusLine(is11 bool, code int) {
	bw := hc.bw
	if is11 {
		bw.WriteString("HTTP/1.1 ")
	} else {
		bw.WriteString("HTTP/1.0 ")
	}
	if code == http.StatusOK {
		bw.WriteString("200 OK\r\n")
		return
	}
	bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	bw.WriteString(" " + text + "\r\n")
}

// writeDate writes the Date header, formatted once a second.
func (hc *h1Conn) writeDate() {
	now := time.Now()
	if s := now.Unix(); s != hc.dateSec {
		hc.dateSec, hc.date = s, "Date: "+now.UTC().Format(http.TimeFormat)+"\r\n"
	}
	hc.bw.WriteString(hc.date)
}
