package resolver

import "github.com/miekg/dns"

// svcbParams returns the SvcParams of an HTTPS or SVCB record, and nil for
// a record of another type.
func svcbParams(rr dns.RR) []dns.SVCBKeyValue {
	switch r := rr.(type) {
	case *dns.HTTPS:
		return r.Value
	case *dns.SVCB:
		return r.Value
	}
	return nil
}

// ECHParam returns the value of the ech SvcParam (key 5, an
// ECHConfigList) of an HTTPS or SVCB record, and whether it has one.
func ECHParam(rr dns.RR) ([]byte, bool) {
	for _, kv := range svcbParams(rr) {
		if e, ok := kv.(*dns.SVCBECHConfig); ok {
			return e.ECH, true
		}
	}
	return nil, false
}
