package conformance

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/echlab/echlab/ech"
	"github.com/miekg/dns"
)

// LabZone is the zone the suite's resolver serves.
const LabZone = "lab.test."

// Config ids of the bad config kinds (the good and other kinds carry their
// key's id, 1 and 2).
var kindIDs = map[ConfigKind]uint8{
	ConfigUnknownVersion: 9, ConfigMandatoryExt: 10, ConfigPublicNameIP: 11, ConfigPublicNameInvalid: 12,
}

// unknownKey is the SvcParamKey of HTTPSRecord.UnknownMandatory: 65000,
// unassigned in the SvcParamKeys registry, so known to no client.
const unknownKey dns.SVCBKey = 65000

// mandatoryExtType is the unknown ECHConfig extension with the mandatory
// bit set (RFC 9849 §4.2) that ConfigMandatoryExt carries.
const mandatoryExtType uint16 = 0xfa5a

// Same-length replacements for public.lab.test (15 octets), so that the
// edit is a byte substitution in the encoded config.
const (
	ipPublicName      = "192.168.100.200"
	invalidPublicName = "pub_ic.lab.test"
)

// configBytes returns the encoded ECHConfig of a kind: the ech package's
// encoding of Env's keys, then byte edits for the kinds the encoder
// refuses to make.
func configBytes(k ConfigKind, env *Env) ([]byte, error) {
	switch k {
	case ConfigGood:
		return env.Key.Config.Marshal()
	case ConfigOther:
		return env.Other.Config.Marshal()
	case ConfigMandatoryExt:
		c := env.Key.Config
		c.Extensions = append([]ech.Extension(nil), ech.Extension{Type: mandatoryExtType, Data: []byte{1}})
		c.ConfigID = kindIDs[k]
		return c.Marshal()
	}
	c := env.Key.Config
	c.ConfigID = kindIDs[k]
	raw, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	switch k {
	case ConfigUnknownVersion:
		raw[0], raw[1] = 0xfe, 0x0e
		return raw, nil
	case ConfigPublicNameIP:
		return replaceName(raw, c.PublicName, ipPublicName)
	case ConfigPublicNameInvalid:
		return replaceName(raw, c.PublicName, invalidPublicName)
	}
	return nil, fmt.Errorf("%w: unknown config kind %q", ErrCase, k)
}

// replaceName substitutes the length-prefixed public_name in an encoded
// config with another of the same length.
func replaceName(raw []byte, old, repl string) ([]byte, error) {
	if len(old) != len(repl) {
		return nil, fmt.Errorf("%w: public_name %q and %q differ in length", ErrCase, old, repl)
	}
	field := append([]byte{byte(len(old))}, old...)
	i := strings.Index(string(raw), string(field))
	if i < 0 {
		return nil, fmt.Errorf("%w: public_name %q not found in the config", ErrCase, old)
	}
	copy(raw[i+1:], repl)
	return raw, nil
}

// configList builds the record's ECHConfigList and applies its edit.
func configList(r HTTPSRecord, env *Env) ([]byte, error) {
	parts := make([][]byte, 0, len(r.ECH))
	for _, k := range r.ECH {
		b, err := configBytes(k, env)
		if err != nil {
			return nil, err
		}
		parts = append(parts, b)
	}
	list, err := ech.MarshalConfigList(parts...)
	if err != nil {
		return nil, err
	}
	switch r.Edit {
	case EditTruncated:
		list = list[:len(list)-10]
	case EditBase64Text:
		list = []byte(base64.StdEncoding.EncodeToString(list))
	}
	return list, nil
}

// skippedIDs are the config ids of the spec's configs that a client must
// skip: every kind but good and other.
func (d DNSSpec) skippedIDs() []uint8 {
	var ids []uint8
	for _, r := range d.records() {
		for _, k := range r.ECH {
			if id, ok := kindIDs[k]; ok && !containsID(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func containsID(ids []uint8, id uint8) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// records returns the spec's records, or the default one.
func (d DNSSpec) records() []HTTPSRecord {
	if d.Records != nil {
		return d.Records
	}
	return []HTTPSRecord{{Priority: 1, ECH: []ConfigKind{ConfigGood}}}
}

// transport returns the spec's DNS transport.
func (d DNSSpec) transport() string {
	if d.Transport == "" {
		return DNSDoH
	}
	return d.Transport
}

// httpsOwner is the HTTPS owner name for secret.lab.test on port.
func httpsOwner(port int) string { return fmt.Sprintf("_%d._https.%s.", port, SecretName) }

// absName turns a record's name into a fully qualified one.
func absName(n string, port int, def string) string {
	if n == "" {
		n = def
	}
	switch n {
	case OwnerName:
		return httpsOwner(port)
	case ".":
		return "."
	}
	return n + "." + LabZone
}

// ZoneText is the lab.test zone for a case served on port: every lab name
// at 127.0.0.1 and the case's HTTPS (or SVCB) records in RFC 3597 generic
// syntax (TYPE65 \# len hex), so that any bytes, malformed lists included,
// are published exactly.
func ZoneText(d DNSSpec, env *Env, port int) (string, error) {
	var b strings.Builder
	b.WriteString("$ORIGIN " + LabZone + "\n$TTL 60\n")
	b.WriteString("@ IN SOA ns.lab.test. hostmaster.lab.test. 1 3600 600 86400 60\n@ IN NS ns.lab.test.\n")
	for _, n := range []string{"ns", "public", "secret"} {
		b.WriteString(n + " IN A 127.0.0.1\n")
	}
	for i, r := range d.records() {
		line, err := httpsLine(r, env, port)
		if err != nil {
			return "", fmt.Errorf("%w: record %d: %w", ErrCase, i, err)
		}
		b.WriteString(line)
	}
	return b.String(), nil
}

// httpsLine packs one HTTPS record and writes it in generic syntax.
func httpsLine(r HTTPSRecord, env *Env, port int) (string, error) {
	owner := absName(r.Owner, port, OwnerName)
	ttl := uint32(60)
	if r.ZeroTTL {
		ttl = 0
	}
	rrtype := dns.TypeHTTPS
	if r.SVCB {
		rrtype = dns.TypeSVCB
	}
	rr := &dns.SVCB{Hdr: dns.RR_Header{Name: owner, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl},
		Priority: r.Priority, Target: absName(r.Target, port, "public")}
	var mandatory []dns.SVCBKey
	if r.MandatoryECH {
		mandatory = append(mandatory, dns.SVCB_ECHCONFIG)
	}
	if r.UnknownMandatory {
		mandatory = append(mandatory, unknownKey)
		rr.Value = append(rr.Value, &dns.SVCBLocal{KeyCode: unknownKey, Data: []byte("x")})
	}
	if len(mandatory) > 0 {
		rr.Value = append(rr.Value, &dns.SVCBMandatory{Code: mandatory})
	}
	if len(r.ECH) > 0 {
		list, err := configList(r, env)
		if err != nil {
			return "", err
		}
		rr.Value = append(rr.Value, &dns.SVCBECHConfig{ECH: list})
	}
	buf := make([]byte, 4096+dns.Len(rr))
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return "", fmt.Errorf("packing the %s record: %w", dns.TypeToString[rrtype], err)
	}
	hdr, err := dns.PackDomainName(owner, make([]byte, 256), 0, nil, false)
	if err != nil {
		return "", fmt.Errorf("packing the owner name: %w", err)
	}
	rdata := buf[hdr+10 : n] // the name, then type, class, TTL and rdlength
	return fmt.Sprintf("%s %d IN TYPE%d \\# %d %s\n", owner, ttl, rrtype, len(rdata), hex.EncodeToString(rdata)), nil
}
