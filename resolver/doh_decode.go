package resolver

import (
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Errors of DoH request decoding. A decoding error is a *dohError that
// carries the HTTP status and wraps one of these.
var (
	errDoHMissingQuery = errors.New("resolver: doh: request carries no query")         // 400
	errDoHBadBase64    = errors.New("resolver: doh: dns parameter is not base64url")   // 400
	errDoHBadQuery     = errors.New("resolver: doh: query is not a valid DNS message") // 400
	errDoHContentType  = errors.New("resolver: doh: unsupported content type")         // 415
	errDoHTooLarge     = errors.New("resolver: doh: query larger than 65535 octets")   // 413
	errDoHMethod       = errors.New("resolver: doh: method not allowed")               // 405
)

// dohError is a DoH request that cannot be answered with a DNS message:
// Status is the HTTP status to reply with.
type dohError struct {
	Status int
	Err    error  // one of the ErrDoH sentinels
	Detail string // what exactly was wrong
}

func (e *dohError) Error() string {
	if e.Detail == "" {
		return e.Err.Error()
	}
	return e.Err.Error() + ": " + e.Detail
}

// Unwrap returns the sentinel error.
func (e *dohError) Unwrap() error { return e.Err }

func dohErr(status int, err error, detail string) *dohError {
	return &dohError{Status: status, Err: err, Detail: detail}
}

func writeDoHError(w http.ResponseWriter, err error) {
	var de *dohError
	if !errors.As(err, &de) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if de.Status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, POST")
	}
	http.Error(w, de.Error(), de.Status)
}

// decodeDoHRequest extracts the DNS query from a DoH request (RFC 8484
// section 4.1). See decodeDoH.
func decodeDoHRequest(r *http.Request) (*dns.Msg, error) {
	return decodeDoH(r.Method, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Body)
}

// decodeDoH decodes a DoH query from its parts: GET with the dns
// parameter in base64url (padding tolerated), or POST with an
// application/dns-message body of at most 65535 octets. Errors are
// *dohError: 400 for a missing or undecodable query, 405 for another
// method, 413 for an oversized body, 415 for another content type.
func decodeDoH(method, rawQuery, contentType string, body io.Reader) (*dns.Msg, error) {
	var wire []byte
	switch method {
	case http.MethodGet:
		param, _, err := queryValue(rawQuery, "dns")
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, errDoHMissingQuery, err.Error())
		}
		if param == "" {
			return nil, dohErr(http.StatusBadRequest, errDoHMissingQuery, "no dns parameter")
		}
		wire, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(param, "="))
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, errDoHBadBase64, err.Error())
		}
	case http.MethodPost:
		mt, _, err := mime.ParseMediaType(contentType)
		if err != nil || mt != mediaDNSMessage {
			return nil, dohErr(http.StatusUnsupportedMediaType, errDoHContentType, strconv.Quote(contentType))
		}
		if body == nil {
			return nil, dohErr(http.StatusBadRequest, errDoHMissingQuery, "empty body")
		}
		wire, err = io.ReadAll(io.LimitReader(body, maxMessage+1))
		if err != nil {
			return nil, dohErr(http.StatusBadRequest, errDoHMissingQuery, err.Error())
		}
	default:
		return nil, dohErr(http.StatusMethodNotAllowed, errDoHMethod, method)
	}
	return unpackDoH(wire)
}

func unpackDoH(wire []byte) (*dns.Msg, error) {
	if len(wire) > maxMessage {
		return nil, dohErr(http.StatusRequestEntityTooLarge, errDoHTooLarge, "")
	}
	if len(wire) == 0 {
		return nil, dohErr(http.StatusBadRequest, errDoHMissingQuery, "empty query")
	}
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return nil, dohErr(http.StatusBadRequest, errDoHBadQuery, err.Error())
	}
	if m.Response {
		return nil, dohErr(http.StatusBadRequest, errDoHBadQuery, "QR bit set: a response, not a query")
	}
	return m, nil
}

// queryValue returns the first value of key in the raw query string raw
// and whether key is there, decoded as url.ParseQuery decodes it, and
// ParseQuery's error. A query without escapes ('%', '+') or semicolons,
// which is what DoH clients send, is scanned in place without building a
// url.Values map.
func queryValue(raw, key string) (val string, ok bool, err error) {
	if needsUnescape(raw) {
		v, err := url.ParseQuery(raw)
		if vals := v[key]; len(vals) > 0 {
			return vals[0], true, err
		}
		return "", false, err
	}
	for raw != "" {
		var seg string
		seg, raw, _ = strings.Cut(raw, "&")
		if k, v, _ := strings.Cut(seg, "="); k == key {
			return v, true, nil
		}
	}
	return "", false, nil
}

// needsUnescape reports whether a raw query has escapes ('%', '+') or a
// semicolon, which only url.ParseQuery handles right.
func needsUnescape(raw string) bool {
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '%', '+', ';':
			return true
		}
	}
	return false
}
