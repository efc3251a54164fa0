package resolver

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DoHPath is the RFC 8484 URI path the DoH endpoint serves; /resolve
// serves the JSON format only.
const (
	DoHPath     = "/dns-query"
	ResolvePath = "/resolve"
)

// Media types of DoH (RFC 8484) and of the JSON format.
const (
	MediaDNSMessage = "application/dns-message"
	MediaDNSJSON    = "application/dns-json"
)

// DoHHandlerOptions configures NewDoHHandler. The zero value works.
type DoHHandlerOptions struct {
	// Path of the DoH endpoint; "" means DoHPath.
	Path string
	// AltSvc, when set, is sent as the Alt-Svc header on HTTP/1.1 and
	// HTTP/2 responses (e.g. `h3=":8443"`) to advertise DoH over HTTP/3.
	AltSvc string
}

// dohHandler serves DoH and the JSON format on top of a Handler.
type dohHandler struct {
	h    Handler
	opts DoHHandlerOptions
}

// NewDoHHandler returns an http.Handler that answers DoH requests (GET
// ?dns= and POST application/dns-message) and JSON requests (Accept:
// application/dns-json, or ?name=&type=, on the DoH path and on /resolve)
// with h. Meta.Transport is doh, doh3 (requests over HTTP/3) or json.
// Responses to padded queries are padded (RFC 8467).
func NewDoHHandler(h Handler, o DoHHandlerOptions) http.Handler {
	if o.Path == "" {
		o.Path = DoHPath
	}
	return &dohHandler{h: h, opts: o}
}

func (d *dohHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if d.opts.AltSvc != "" && r.ProtoMajor < 3 {
		w.Header().Set("Alt-Svc", d.opts.AltSvc)
	}
	switch {
	case r.URL.Path == ResolvePath || (r.URL.Path == d.opts.Path && wantsJSON(r)):
		d.serveJSON(w, r)
	case r.URL.Path == d.opts.Path:
		d.serveWire(w, r)
	default:
		http.Error(w, "resolver: no DoH endpoint at "+r.URL.Path, http.StatusNotFound)
	}
}

// wantsJSON reports whether a request on the DoH path asks for the JSON
// format: by its Accept header, or by a name parameter without dns.
func wantsJSON(r *http.Request) bool {
	accept := r.Header.Get("Accept")
	if strings.Contains(accept, MediaDNSJSON) || strings.Contains(accept, "application/json") {
		return true
	}
	q := r.URL.Query()
	return r.Method == http.MethodGet && q.Has("name") && !q.Has("dns")
}

func (d *dohHandler) serveWire(w http.ResponseWriter, r *http.Request) {
	req, err := DecodeDoHRequest(r)
	if err != nil {
		writeDoHError(w, err)
		return
	}
	resp := d.answer(r, req, transportOf(r))
	b, err := resp.Pack()
	if err != nil {
		http.Error(w, "resolver: packing response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", MediaDNSMessage)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	setCacheControl(w, resp)
	w.Write(b)
}

func (d *dohHandler) serveJSON(w http.ResponseWriter, r *http.Request) {
	var req *dns.Msg
	var err error
	q := r.URL.Query()
	if r.Method == http.MethodPost || q.Has("dns") {
		req, err = DecodeDoHRequest(r)
	} else if r.Method == http.MethodGet {
		req, err = ParseJSONQuery(q)
	} else {
		err = dohErr(http.StatusMethodNotAllowed, ErrDoHMethod, r.Method)
	}
	if err != nil {
		writeDoHError(w, err)
		return
	}
	resp := d.answer(r, req, TransportJSON)
	b, err := json.Marshal(NewJSONMessage(resp))
	if err != nil {
		http.Error(w, "resolver: encoding JSON: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", MediaDNSJSON)
	setCacheControl(w, resp)
	w.Write(append(b, '\n'))
}

// answer calls the Handler and applies what the transport owes: the
// query's ID and padding.
func (d *dohHandler) answer(r *http.Request, req *dns.Msg, transport string) *dns.Msg {
	meta := Meta{Transport: transport, Client: remoteAddr(r), UDPSize: maxMessage}
	resp := d.h.Answer(r.Context(), req, meta)
	if resp == nil { // a broken Handler: answer SERVFAIL rather than panic
		resp = new(dns.Msg).SetRcode(req, dns.RcodeServerFailure)
	}
	resp.Id = req.Id
	if transport != TransportJSON {
		PadResponse(req, resp)
	}
	return resp
}

func transportOf(r *http.Request) string {
	if r.ProtoMajor == 3 {
		return TransportDoH3
	}
	return TransportDoH
}

func remoteAddr(r *http.Request) net.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return nil
	}
	if r.ProtoMajor == 3 {
		return net.UDPAddrFromAddrPort(ap)
	}
	return net.TCPAddrFromAddrPort(ap)
}

// setCacheControl sets max-age to the smallest TTL in the response (RFC
// 8484 section 5.1); a response without records gets no header.
func setCacheControl(w http.ResponseWriter, m *dns.Msg) {
	minTTL, found := uint32(0), false
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			if t := rr.Header().Ttl; !found || t < minTTL {
				minTTL, found = t, true
			}
		}
	}
	if found {
		w.Header().Set("Cache-Control", "max-age="+strconv.FormatUint(uint64(minTTL), 10))
	}
}

// DoHOptions configures StartDoH and StartDoH3. The zero value listens on
// 127.0.0.1 on a free port, but a certificate is required.
type DoHOptions struct {
	TLSListenerOptions
	DoHHandlerOptions
	// HTTP1Only offers only http/1.1 in ALPN (no HTTP/2).
	HTTP1Only bool
	// ErrorLog receives the HTTP server's errors (TLS handshake failures
	// and the like); nil discards them.
	ErrorLog *log.Logger
}

// DoHServer is a running DoH listener over HTTP/1.1 and HTTP/2.
type DoHServer struct {
	srv *http.Server
	ln  net.Listener
}

// StartDoH listens on o.Addr (TCP) and serves DoH with TLS until Close.
func StartDoH(h Handler, o DoHOptions) (*DoHServer, error) {
	ln, err := net.Listen("tcp", o.addr())
	if err != nil {
		return nil, fmt.Errorf("resolver: doh: %w", err)
	}
	return serveDoH(ln, h, o)
}

func serveDoH(ln net.Listener, h Handler, o DoHOptions) (*DoHServer, error) {
	alpn := []string{"h2", "http/1.1"}
	if o.HTTP1Only {
		alpn = alpn[1:]
	}
	conf, err := o.ServerConfig(alpn...)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if o.ErrorLog == nil {
		o.ErrorLog = log.New(io.Discard, "", 0)
	}
	srv := &http.Server{
		Handler:           NewDoHHandler(h, o.DoHHandlerOptions),
		TLSConfig:         conf,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          o.ErrorLog,
		Protocols:         new(http.Protocols),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetHTTP2(!o.HTTP1Only)
	go srv.ServeTLS(ln, "", "")
	return &DoHServer{srv: srv, ln: ln}, nil
}

// Addr returns the TCP address the server listens on.
func (s *DoHServer) Addr() net.Addr { return s.ln.Addr() }

// URL returns the server's DoH URL, https://ADDR/dns-query.
func (s *DoHServer) URL() string { return "https://" + s.ln.Addr().String() + DoHPath }

// Close stops the server and closes its connections.
func (s *DoHServer) Close() error { return s.srv.Close() }

// Shutdown stops the server gracefully, waiting for requests in flight.
func (s *DoHServer) Shutdown(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Errors of DoH request decoding. A decoding error is a *DoHError that
// carries the HTTP status and wraps one of these.
var (
	ErrDoHMissingQuery = errors.New("resolver: doh: request carries no query")         // 400
	ErrDoHBadBase64    = errors.New("resolver: doh: dns parameter is not base64url")   // 400
	ErrDoHBadQuery     = errors.New("resolver: doh: query is not a valid DNS message") // 400
	ErrDoHContentType  = errors.New("resolver: doh: unsupported content type")         // 415
	ErrDoHTooLarge     = errors.New("resolver: doh: query larger than 65535 octets")   // 413
	ErrDoHMethod       = errors.New("resolver: doh: method not allowed")               // 405
)

// DoHError is a DoH request that cannot be answered with a DNS message:
// Status is the HTTP status to reply with.
type DoHError struct {
	Status int
	Err    error  // one of the ErrDoH sentinels
	Detail string // what exactly was wrong
}

func (e *DoHError) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

// Unwrap returns the sentinel error.
func (e *DoHError) Unwrap() error { return e.Err }

func dohErr(status int, err error, detail string) *DoHError {
	return &DoHError{Status: status, Err: err, Detail: detail}
}

func writeDoHError(w http.ResponseWriter, err error) {
	var de *DoHError
	if !errors.As(err, &de) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if de.Status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, POST")
	}
	http.Error(w, de.Error(), de.Status)
}

// DecodeDoHRequest extracts the DNS query from a DoH request (RFC 8484
// section 4.1). See DecodeDoH.
func DecodeDoHRequest(r *http.Request) (*dns.Msg, error) {
	return DecodeDoH(r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Body)
}

// DecodeDoH decodes a DoH query from its parts: GET with the dns
// parameter in base64url (padding tolerated), or POST with an
// application/dns-message body of at most 65535 octets. Errors are
// *DoHError: 400 for a missing or undecodable query, 405 for another
// method, 413 for an oversized body, 415 for another content type.
func DecodeDoH(method, rawQuery, contentType string, body io.Reader) (*dns.Msg, error) {
	var wire []byte
	switch method {
	case http.MethodGet:
		v, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, ErrDoHMissingQuery, err.Error())
		}
		param := v.Get("dns")
		if param == "" {
			return nil, dohErr(http.StatusBadRequest, ErrDoHMissingQuery, "no dns parameter")
		}
		wire, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(param, "="))
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, ErrDoHBadBase64, err.Error())
		}
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || mt != MediaDNSMessage {
			return nil, dohErr(http.StatusUnsupportedMediaType, ErrDoHContentType, strconv.Quote(contentType))
		}
		if body == nil {
			return nil, dohErr(http.StatusBadRequest, ErrDoHMissingQuery, "empty body")
		}
		wire, err = io.ReadAll(io.LimitReader(body, maxMessage+1))
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, ErrDoHMissingQuery, err.Error())
		}
	default:
		return nil, dohErr(http.StatusMethodNotAllowed, ErrDoHMethod, method)
	}
	return unpackDoH(wire)
}

func unpackDoH(wire []byte) (*dns.Msg, error) {
	if len(wire) > maxMessage {
		return nil, dohErr(http.StatusRequestEntityTooLarge, ErrDoHTooLarge, "")
	}
	if len(wire) == 0 {
		return nil, dohErr(http.StatusBadRequest, ErrDoHMissingQuery, "empty query")
	}
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return nil, dohErr(http.StatusBadRequest, ErrDoHBadQuery, err.Error())
	}
	if m.Response {
		return nil, dohErr(http.StatusBadRequest, ErrDoHBadQuery, "QR bit set: a response, not a query")
	}
	return m, nil
}

// TLSListenerOptions is what an encrypted listener (DoH, DoH3, DoQ; DoT
// may use it too) needs: an address, a certificate and optional ECH keys.
type TLSListenerOptions struct {
	// Addr to listen on, host:port with an IP literal; "" means
	// 127.0.0.1:0 (a free port on loopback).
	Addr string
	// Certificates to serve; or CertFile and KeyFile (PEM) to load one.
	Certificates      []tls.Certificate
	CertFile, KeyFile string
	// ECHKeys, when set, let the listener itself accept Encrypted Client
	// Hello; GetECHKeys is the dynamic form (it wins when both are set).
	ECHKeys    []tls.EncryptedClientHelloKey
	GetECHKeys func(*tls.ClientHelloInfo) ([]tls.EncryptedClientHelloKey, error)
}

// ErrNoCertificate is returned when an encrypted listener has no certificate.
var ErrNoCertificate = errors.New("resolver: listener has no TLS certificate")

func (o *TLSListenerOptions) addr() string {
	if o.Addr == "" {
		return "127.0.0.1:0"
	}
	return o.Addr
}

// ServerConfig builds the listener's tls.Config offering the given ALPN
// protocols.
func (o *TLSListenerOptions) ServerConfig(alpn ...string) (*tls.Config, error) {
	certs := append([]tls.Certificate(nil), o.Certificates...)
	if o.CertFile != "" || o.KeyFile != "" {
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("resolver: loading certificate %s: %w", o.CertFile, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, ErrNoCertificate
	}
	return &tls.Config{
		Certificates:                certs,
		NextProtos:                  alpn,
		MinVersion:                  tls.VersionTLS12,
		EncryptedClientHelloKeys:    o.ECHKeys,
		GetEncryptedClientHelloKeys: o.GetECHKeys,
	}, nil
}
