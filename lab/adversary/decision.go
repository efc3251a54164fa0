package adversary

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/echlab/echlab/lab/capture"
)

// Decision is one thing the adversary decided: about a TCP connection
// (one per connection), a DNS message on a Do53 relay (one per message,
// and one more per policy that rewrote it), or a datagram it discarded.
// Datagrams it let through untouched are not logged.
type Decision struct {
	Time          time.Time    `json:"time"`
	Policy        string       `json:"policy,omitempty"` // Policy.String(); "" for a pass that matched nothing
	Action        string       `json:"action"`           // "drop", "rst", "rst-after-reply", "rewrite", "pass"
	Flow          capture.Flow `json:"flow"`             // JSON: role, proto, client, relay, backend
	SNI           string       `json:"sni,omitempty"`    // the visible SNI when a ClientHello was seen
	ECH           bool         `json:"ech,omitempty"`    // the ClientHello carried encrypted_client_hello (outer)
	ECHPayloadLen int          `json:"ech_payload_len,omitempty"`
	ECHConfigID   *uint8       `json:"ech_config_id,omitempty"`
	QName         string       `json:"qname,omitempty"` // DNS: the question's name
	QType         string       `json:"qtype,omitempty"` // DNS: the question's type
	Detail        string       `json:"detail,omitempty"`
}

// Sighting is a name the adversary saw in the clear: the SNI of a
// ClientHello (Kind "sni") or the question of a Do53 query (Kind
// "dns-query"). Name is in lower case without a trailing dot.
type Sighting struct {
	Flow capture.Flow `json:"flow"`
	Kind string       `json:"kind"`
	Name string       `json:"name"`
}

// Sighting kinds.
const (
	SawSNI      = "sni"
	SawDNSQuery = "dns-query"
)

// flowJSON is capture.Flow with the lower-case keys of the run's JSON
// files.
type flowJSON struct {
	Role    capture.Role   `json:"role"`
	Proto   string         `json:"proto"`
	Client  netip.AddrPort `json:"client"`
	Relay   netip.AddrPort `json:"relay"`
	Backend string         `json:"backend"`
}

func (f flowJSON) flow() capture.Flow { return capture.Flow(f) }

// decisionJSON is Decision with Flow as flowJSON; the outer Flow field
// hides the embedded one.
type decisionJSON struct {
	plainDecision
	Flow flowJSON `json:"flow"`
}

type plainDecision Decision

// MarshalJSON writes d with the flow's keys in lower case.
func (d Decision) MarshalJSON() ([]byte, error) {
	return json.Marshal(decisionJSON{plainDecision(d), flowJSON(d.Flow)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (d *Decision) UnmarshalJSON(b []byte) error {
	var v decisionJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*d = Decision(v.plainDecision)
	d.Flow = v.Flow.flow()
	return nil
}

type plainSighting Sighting

type sightingJSON struct {
	plainSighting
	Flow flowJSON `json:"flow"`
}

// MarshalJSON writes s with the flow's keys in lower case.
func (s Sighting) MarshalJSON() ([]byte, error) {
	return json.Marshal(sightingJSON{plainSighting(s), flowJSON(s.Flow)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Sighting) UnmarshalJSON(b []byte) error {
	var v sightingJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Sighting(v.plainSighting)
	s.Flow = v.Flow.flow()
	return nil
}
