package resolver

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"

	"github.com/miekg/dns"
)

// FuzzDoHRequest feeds arbitrary DoH requests to the decoder: it returns
// a query or a *dohError with a 4xx status, and never panics.
func FuzzDoHRequest(f *testing.F) {
	q, _ := query("secret.lab.test.", dns.TypeHTTPS, 0).Pack()
	f.Add("GET", "dns="+base64.RawURLEncoding.EncodeToString(q), "", []byte(nil))
	f.Add("POST", "", mediaDNSMessage, q)
	f.Add("POST", "", "application/dns-message; charset=x", []byte{0, 0, 1})
	f.Add("GET", "dns=%zz", "", []byte(nil))
	f.Add("PUT", "", "", q)
	f.Fuzz(func(t *testing.T, method, rawQuery, ctype string, body []byte) {
		m, err := decodeDoH(method, rawQuery, ctype, bytes.NewReader(body))
		if err == nil {
			if m == nil || m.Response {
				t.Fatal("decoder accepted a nil message or a response")
			}
			return
		}
		var de *dohError
		if !errors.As(err, &de) || de.Status < 400 || de.Status > 499 {
			t.Fatalf("error %v is not a 4xx *DoHError", err)
		}
	})
}
