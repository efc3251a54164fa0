package resolver

import (
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

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
	mediaDNSMessage = "application/dns-message"
	mediaDNSJSON    = "application/dns-json"
)

// DoHHandlerOptions configures newDoHHandler. The zero value works.
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

// newDoHHandler returns an http.Handler that answers DoH requests (GET
// ?dns= and POST application/dns-message) and JSON requests (Accept:
// application/dns-json, or ?name=&type=, on the DoH path and on /resolve)
// with h. Meta.Transport is doh, doh3 (requests over HTTP/3) or json.
// Responses to padded queries are padded (RFC 8467).
func newDoHHandler(h Handler, o DoHHandlerOptions) http.Handler {
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
	if strings.Contains(accept, mediaDNSJSON) || strings.Contains(accept, "application/json") {
		return true
	}
	if r.Method != http.MethodGet {
		return false
	}
	_, hasName, _ := queryValue(r.URL.RawQuery, "name")
	_, hasDNS, _ := queryValue(r.URL.RawQuery, "dns")
	return hasName && !hasDNS
}

func (d *dohHandler) serveWire(w http.ResponseWriter, r *http.Request) {
	req, err := decodeDoHRequest(r)
	if err != nil {
		writeDoHError(w, err)
		return
	}
	resp := d.answer(r, req, transportOf(r))
	bp := getPackBuffer()
	defer putPackBuffer(bp)
	b, err := resp.PackBuffer(*bp)
	if err != nil {
		http.Error(w, "resolver: packing response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	*bp = b
	// Canonical keys set directly: Header.Set would canonicalise them
	// and allocate a slice per value on every response.
	hdr := w.Header()
	hdr["Content-Type"] = headerDNSMessage
	hdr["Content-Length"] = []string{strconv.Itoa(len(b))}
	setCacheControl(w, resp)
	w.Write(b)
}

// headerDNSMessage is the Content-Type value of wire-format responses,
// shared by every response (net/http only reads header values).
var headerDNSMessage = []string{mediaDNSMessage}

func (d *dohHandler) serveJSON(w http.ResponseWriter, r *http.Request) {
	var req *dns.Msg
	var err error
	q := r.URL.Query()
	if r.Method == http.MethodPost || q.Has("dns") {
		req, err = decodeDoHRequest(r)
	} else if r.Method == http.MethodGet {
		req, err = parseJSONQuery(q)
	} else {
		err = dohErr(http.StatusMethodNotAllowed, errDoHMethod, r.Method)
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
	w.Header().Set("Content-Type", mediaDNSJSON)
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
		padResponse(req, resp)
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
		w.Header()["Cache-Control"] = []string{"max-age=" + strconv.FormatUint(uint64(minTTL), 10)}
	}
}
