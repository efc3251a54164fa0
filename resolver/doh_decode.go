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
