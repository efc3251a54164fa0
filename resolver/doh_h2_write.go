package resolver

import (
	"bufio"
	"bytes"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2ItemKind is what an h2Item asks the writer to do.
type h2ItemKind uint8

const (
	h2ItemResponse       h2ItemKind = iota // write a response (resp)
	h2ItemServerSettings                   // write our SETTINGS, first of all
	h2ItemPeerSettings                     // apply the peer's settings, then ack them
	h2ItemPing                             // answer a PING (ping)
	h2ItemWindow                           // the peer gives n octets of credit on stream (0: the connection)
	h2ItemWindowOut                        // give the peer n octets of credit on stream (0: the connection)
	h2ItemReset                            // send RST_STREAM code; done: count the stream as answered
	h2ItemPeerReset                        // the peer reset stream: drop its pending response
	h2ItemGoAway                           // send GOAWAY code with last stream ID stream
)

// h2Item is one thing for the writer goroutine to do.
type h2Item struct {
	kind       h2ItemKind
	stream     uint32
	n          uint32
	code       http2.ErrCode
	done       bool
	resetAfter bool // after the response, reset the stream (its body was not read)
	ping       [8]byte
	settings   []http2.Setting
	resp       *h2ResponseWriter
}

// h2Pending is a response whose body waits for flow-control credit.
type h2Pending struct {
	id         uint32
	win        int64 // what the peer lets us send on the stream
	data       []byte
	rw         *h2ResponseWriter
	resetAfter bool
}

// h2Writer owns the write side of a connection: the framer, the hpack
// encoder and the peer's flow-control windows.
type h2Writer struct {
	hc   *h2Conn
	bw   *bufio.Writer
	fr   *http2.Framer
	hbuf bytes.Buffer
	enc  *hpack.Encoder

	mu      sync.Mutex // guards stopped and sends on ch
	stopped bool
	ch      chan h2Item
	done    chan struct{}

	failed   bool // a write failed: the rest is discarded
	dirty    bool // written since the last flush
	connWin  int64
	initWin  int64
	maxFrame int
	winAdj   map[uint32]int64 // credit for streams whose response is not out yet
	pending  []*h2Pending
	date     string
	dateSec  int64
}

func newH2Writer(hc *h2Conn, bw *bufio.Writer) *h2Writer {
	w := &h2Writer{
		hc: hc, bw: bw, fr: http2.NewFramer(bw, nil),
		ch: make(chan h2Item, 256), done: make(chan struct{}),
		connWin: h2DefaultWindow, initWin: h2DefaultWindow, maxFrame: 16384,
		winAdj: map[uint32]int64{},
	}
	w.enc = hpack.NewEncoder(&w.hbuf)
	return w
}

// send queues an item; after stop it is dropped.
func (w *h2Writer) send(it h2Item) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		if it.resp != nil {
			putH2ResponseWriter(it.resp)
		}
		return
	}
	w.ch <- it
}

// stop ends the writer after what is queued, and waits for it.
func (w *h2Writer) stop() {
	w.mu.Lock()
	if !w.stopped {
		w.stopped = true
		close(w.ch)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *h2Writer) run() {
	defer close(w.done)
	for it := range w.ch {
		w.handle(it)
		// A batch: what is queued, and what the workers made runnable by
		// the same read are about to queue (one yield lets them), goes
		// out in one flush, that is one TLS record and one write.
		for yielded := false; ; yielded = true {
			for n := len(w.ch); n > 0; n-- {
				if it, ok := <-w.ch; ok {
					w.handle(it)
				}
			}
			if yielded {
				break
			}
			runtime.Gosched()
		}
		if w.dirty && !w.failed {
			if err := w.bw.Flush(); err != nil {
				w.failed = true
			}
		}
		w.dirty = false
	}
	for _, p := range w.pending {
		putH2ResponseWriter(p.rw)
	}
	w.pending = nil
}

// wrote records the outcome of a framer write.
func (w *h2Writer) wrote(err error) {
	w.dirty = true
	if err != nil {
		w.failed = true
	}
}

func (w *h2Writer) handle(it h2Item) {
	switch it.kind {
	case h2ItemResponse:
		w.writeResponse(it.stream, it.resp, it.resetAfter)
	case h2ItemServerSettings:
		w.wrote(w.fr.WriteSettings(
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: h2MaxStreams},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
		))
	case h2ItemPeerSettings:
		for _, s := range it.settings {
			switch s.ID {
			case http2.SettingHeaderTableSize:
				w.enc.SetMaxDynamicTableSizeLimit(s.Val)
			case http2.SettingInitialWindowSize:
				delta := int64(s.Val) - w.initWin
				w.initWin = int64(s.Val)
				for _, p := range w.pending {
					p.win += delta
				}
			case http2.SettingMaxFrameSize:
				w.maxFrame = int(s.Val)
			}
		}
		w.wrote(w.fr.WriteSettingsAck())
		w.retry()
	case h2ItemPing:
		w.wrote(w.fr.WritePing(true, it.ping))
	case h2ItemWindow:
		w.credit(it.stream, int64(it.n))
	case h2ItemWindowOut:
		w.wrote(w.fr.WriteWindowUpdate(it.stream, it.n))
	case h2ItemReset:
		w.drop(it.stream)
		w.wrote(w.fr.WriteRSTStream(it.stream, it.code))
		if it.done {
			w.hc.streamDone()
		}
	case h2ItemPeerReset:
		w.drop(it.stream)
	case h2ItemGoAway:
		w.wrote(w.fr.WriteGoAway(it.stream, it.code, nil))
	}
}

// credit adds flow-control credit from a WINDOW_UPDATE.
func (w *h2Writer) credit(stream uint32, n int64) {
	if stream == 0 {
		w.connWin += n
		if w.connWin > h2MaxWindow {
			w.wrote(w.fr.WriteGoAway(0, http2.ErrCodeFlowControl, nil))
			w.hc.conn.SetReadDeadline(time.Now()) // the reader ends the connection
			return
		}
		w.retry()
		return
	}
	for _, p := range w.pending {
		if p.id == stream {
			p.win += n
			w.retry()
			return
		}
	}
	if len(w.winAdj) >= 2*h2MaxStreams { // credit for streams long done
		clear(w.winAdj)
	}
	w.winAdj[stream] += n
}

// drop forgets the pending response of a stream that was reset.
func (w *h2Writer) drop(stream uint32) {
	for i, p := range w.pending {
		if p.id == stream {
			w.pending = append(w.pending[:i], w.pending[i+1:]...)
			putH2ResponseWriter(p.rw)
			return
		}
	}
}

// retry writes what flow control now allows of the pending responses.
func (w *h2Writer) retry() {
	kept := w.pending[:0]
	for _, p := range w.pending {
		if w.writeData(p) {
			w.finish(p.id, p.rw, p.resetAfter)
			continue
		}
		kept = append(kept, p)
	}
	clear(w.pending[len(kept):])
	w.pending = kept
}

// writeResponse writes the HEADERS of a response and as much of its body
// as flow control allows; the rest waits in pending. The stream counts as
// answered from here on: what is left waits for the peer, and a peer
// that gives no credit and sends nothing else is idle, so the idle
// timeout closes its connection.
func (w *h2Writer) writeResponse(id uint32, rw *h2ResponseWriter, resetAfter bool) {
	w.hc.streamDone()
	body := rw.body
	if rw.head || !bodyAllowed(rw.status) {
		body = nil
	}
	w.encodeHeaders(rw)
	block := w.hbuf.Bytes()
	first := block
	if len(first) > w.maxFrame {
		first = first[:w.maxFrame]
	}
	w.wrote(w.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: first, EndStream: len(body) == 0, EndHeaders: len(first) == len(block),
	}))
	for rest := block[len(first):]; len(rest) > 0; {
		n := min(len(rest), w.maxFrame)
		w.wrote(w.fr.WriteContinuation(id, n == len(rest), rest[:n]))
		rest = rest[n:]
	}
	adj := w.winAdj[id]
	delete(w.winAdj, id)
	if len(body) == 0 {
		w.finish(id, rw, resetAfter)
		return
	}
	p := &h2Pending{id: id, win: w.initWin + adj, data: body, rw: rw, resetAfter: resetAfter}
	if w.writeData(p) {
		w.finish(id, rw, resetAfter)
		return
	}
	w.pending = append(w.pending, p)
}

// writeData writes DATA frames of p while credit lasts; true when the
// body is all out (the last frame ends the stream).
func (w *h2Writer) writeData(p *h2Pending) bool {
	for len(p.data) > 0 {
		n := int64(min(len(p.data), w.maxFrame))
		n = min(n, w.connWin, p.win)
		if n <= 0 {
			return false
		}
		end := int(n) == len(p.data)
		w.wrote(w.fr.WriteData(p.id, end, p.data[:n]))
		w.connWin -= n
		p.win -= n
		p.data = p.data[n:]
	}
	return true
}

// finish ends a stream whose response is out.
func (w *h2Writer) finish(id uint32, rw *h2ResponseWriter, resetAfter bool) {
	if resetAfter { // the client may stop sending the body we did not read
		w.wrote(w.fr.WriteRSTStream(id, http2.ErrCodeNo))
	}
	putH2ResponseWriter(rw)
}

// encodeHeaders hpack-encodes the response header block into w.hbuf:
// :status, the handler's headers in lower case less the connection-
// specific ones (RFC 9113 section 8.2.2), and, when the handler left
// them out, content-type (sniffed, as net/http does), content-length and
// date.
func (w *h2Writer) encodeHeaders(rw *h2ResponseWriter) {
	w.hbuf.Reset()
	w.field(":status", statusString(rw.status))
	for k, vv := range rw.hdr {
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			continue
		}
		name := lowerH2Header(k)
		for _, v := range vv {
			w.field(name, v)
		}
	}
	if _, ok := rw.hdr["Content-Type"]; !ok && len(rw.body) > 0 {
		w.field("content-type", http.DetectContentType(rw.body))
	}
	// As net/http: a HEAD response tells the length of the body it would
	// have had, when the handler wrote one.
	if _, ok := rw.hdr["Content-Length"]; !ok && bodyAllowed(rw.status) && (len(rw.body) > 0 || !rw.head) {
		w.field("content-length", strconv.Itoa(len(rw.body)))
	}
	if _, ok := rw.hdr["Date"]; !ok {
		now := time.Now()
		if s := now.Unix(); s != w.dateSec {
			w.dateSec, w.date = s, now.UTC().Format(http.TimeFormat)
		}
		w.field("date", w.date)
	}
}

func (w *h2Writer) field(name, value string) {
	w.enc.WriteField(hpack.HeaderField{Name: name, Value: value}) //nolint:errcheck // writes to a bytes.Buffer
}

// bodyAllowed reports whether a response with this status may have a
// body (RFC 9110 sections 6.4.1, 15.3.5 and 15.4.5).
func bodyAllowed(code int) bool {
	return code >= 200 && code != http.StatusNoContent && code != http.StatusNotModified
}

func statusString(code int) string {
	if code == http.StatusOK {
		return "200"
	}
	return strconv.Itoa(code)
}

// lowerH2Header lower-cases a canonical header key, without allocating
// for the headers the DoH handler sets.
func lowerH2Header(k string) string {
	switch k {
	case "Content-Type":
		return "content-type"
	case "Content-Length":
		return "content-length"
	case "Cache-Control":
		return "cache-control"
	case "Alt-Svc":
		return "alt-svc"
	case "Allow":
		return "allow"
	case "X-Content-Type-Options":
		return "x-content-type-options"
	}
	return lowerASCII(k)
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// h2ResponseWriter is the http.ResponseWriter of one HTTP/2 request: it
// keeps the status, headers and body for the writer goroutine.
type h2ResponseWriter struct {
	hdr    http.Header
	status int
	body   []byte
	head   bool // a HEAD request: no body goes out
}

var h2ResponseWriters = sync.Pool{New: func() any { return &h2ResponseWriter{hdr: make(http.Header, 4)} }}

func getH2ResponseWriter() *h2ResponseWriter { return h2ResponseWriters.Get().(*h2ResponseWriter) }

func putH2ResponseWriter(rw *h2ResponseWriter) {
	clear(rw.hdr)
	rw.status, rw.head = 0, false
	if cap(rw.body) > maxPooledBuffer {
		rw.body = nil
	}
	rw.body = rw.body[:0]
	h2ResponseWriters.Put(rw)
}

// Header returns the response headers.
func (rw *h2ResponseWriter) Header() http.Header { return rw.hdr }

// WriteHeader sets the status; informational (1xx) ones are not sent.
func (rw *h2ResponseWriter) WriteHeader(code int) {
	if rw.status == 0 && code >= 200 {
		rw.status = code
	}
}

// Write appends to the body.
func (rw *h2ResponseWriter) Write(b []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	rw.body = append(rw.body, b...)
	return len(b), nil
}
