package server

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"strings"
	"time"
)

// ConnInfo is what /api/conn returns: the connection's ConnRecord plus the
// request that asked.
type ConnInfo struct {
	ConnRecord
	HTTP string `json:"http"` // "http/1.1", "http/2" or "http/3"
	Host string `json:"host"` // the request's Host (:authority)
}

type recordKey struct{}

func withRecord(ctx context.Context, r *ConnRecord) context.Context {
	return context.WithValue(ctx, recordKey{}, r)
}

func recordFrom(ctx context.Context) *ConnRecord {
	r, _ := ctx.Value(recordKey{}).(*ConnRecord)
	return r
}

// handler serves the what-it-saw pages.
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/cdn-cgi/trace", s.serveTrace)
	mux.HandleFunc("/api/conn", s.serveJSON)
	mux.HandleFunc("/", s.servePage)
	return s.altSvc(mux)
}

// altSvc advertises HTTP/3 on TCP responses when it is enabled.
func (s *Server) altSvc(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.h3 != nil && r.ProtoMajor < 3 {
			w.Header().Set("Alt-Svc", fmt.Sprintf(`h3=":%d"; ma=86400`, s.h3.addr.Port))
		}
		h.ServeHTTP(w, r)
	})
}

// info gathers the ConnInfo for a request.
func (s *Server) info(r *http.Request) ConnInfo {
	var rec ConnRecord
	if p := recordFrom(r.Context()); p != nil {
		rec = *p
	} else if r.TLS != nil {
		rec = ConnRecord{Schema: RecordSchema, Mode: s.cfg.Mode, ECH: ECHNone, ClientAddr: r.RemoteAddr}
		rec.fill(*r.TLS)
	}
	return ConnInfo{ConnRecord: rec, HTTP: httpName(r), Host: r.Host}
}

func httpName(r *http.Request) string {
	switch r.ProtoMajor {
	case 2:
		return "http/2"
	case 3:
		return "http/3"
	}
	return fmt.Sprintf("http/%d.%d", r.ProtoMajor, r.ProtoMinor)
}

func (s *Server) serveJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(s.info(r)) //nolint:errcheck // the client went away
}

// sniKind is the trace's sni= value: "encrypted" when ECH carried the real
// name, "plaintext" when a name was sent in clear, "none" without SNI.
func sniKind(in ConnInfo) string {
	switch {
	case in.ECH == ECHAccepted:
		return "encrypted"
	case in.OuterSNI != "":
		return "plaintext"
	}
	return "none"
}

func (s *Server) serveTrace(w http.ResponseWriter, r *http.Request) {
	in := s.info(r)
	ip, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := s.cfg.Now()
	configID := ""
	if in.ConfigID != nil {
		configID = fmt.Sprint(*in.ConfigID)
	}
	lines := [][2]string{
		{"fl", "echlab"}, {"h", r.Host}, {"ip", ip},
		{"ts", fmt.Sprintf("%d.%03d", now.Unix(), now.Nanosecond()/int(time.Millisecond))},
		{"visit_scheme", "https"}, {"uag", r.UserAgent()}, {"colo", "LAB"},
		{"http", in.HTTP}, {"loc", "ZZ"}, {"tls", in.Version}, {"sni", sniKind(in)},
		{"ech", in.ECH}, {"outer_sni", in.OuterSNI}, {"inner_sni", in.InnerSNI},
		{"ech_config_id", configID}, {"hpke", in.HPKESuite}, {"hrr", yesNo(in.HRR)},
		{"alpn", in.ALPN}, {"cipher", in.Cipher}, {"kex", in.Group}, {"transport", in.Transport},
		{"mode", in.Mode},
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s=%s\n", l[0], strings.ReplaceAll(l[1], "\n", " "))
	}
	w.Write([]byte(b.String())) //nolint:errcheck
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>echlab: {{.Host}}</title></head>
<body><h1>{{if eq .ECH "accepted"}}ECH accepted{{else}}ECH not accepted ({{.ECH}}){{end}}</h1>
<table>
<tr><th>Host</th><td>{{.Host}}</td></tr>
<tr><th>Outer SNI</th><td>{{.OuterSNI}}</td></tr>
<tr><th>Inner SNI</th><td>{{.InnerSNI}}</td></tr>
<tr><th>ECH config id</th><td>{{.ConfigID}}</td></tr>
<tr><th>HPKE suite</th><td>{{.HPKESuite}}</td></tr>
<tr><th>HelloRetryRequest</th><td>{{.HRR}}</td></tr>
<tr><th>HTTP</th><td>{{.HTTP}}</td></tr>
<tr><th>ALPN</th><td>{{.ALPN}}</td></tr>
<tr><th>TLS version</th><td>{{.Version}}</td></tr>
<tr><th>Cipher suite</th><td>{{.Cipher}}</td></tr>
<tr><th>Key exchange</th><td>{{.Group}}</td></tr>
<tr><th>Transport</th><td>{{.Transport}}</td></tr>
<tr><th>Client certificate</th><td>{{.ClientCert}}</td></tr>
<tr><th>Server mode</th><td>{{.Mode}}</td></tr>
</table>
<p>Machine-readable: <a href="/cdn-cgi/trace">/cdn-cgi/trace</a>, <a href="/api/conn">/api/conn</a>.</p>
</body></html>
`))

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	in := s.info(r)
	type view struct {
		ConnInfo
		ConfigID string
	}
	v := view{ConnInfo: in}
	if in.ConfigID != nil {
		v.ConfigID = fmt.Sprint(*in.ConfigID)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTmpl.Execute(w, v) //nolint:errcheck
}
