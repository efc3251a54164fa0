package observe

import (
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/echlab/echlab/ech"
)

// ECHESNI is the ECH column of a flow whose ClientHello carries the legacy
// encrypted_server_name extension (0xffce, draft-ietf-tls-esni-02/03)
// instead of encrypted_client_hello.
const ECHESNI = "esni"

// FlowESNI is what the observer reads of a legacy ESNI ClientHello: the
// name is encrypted, but the ESNI suite, key share group, record digest
// (which published ESNIKeys) and the fixed encrypted length are not, and
// every other extension — ALPN included — travels in the clear.
type FlowESNI struct {
	ESNI              bool   `json:"esni,omitempty"`
	ESNISuite         uint16 `json:"esni_suite,omitempty"`
	ESNIKeyShareGroup uint16 `json:"esni_key_share_group,omitempty"`
	ESNIRecordDigest  string `json:"esni_record_digest,omitempty"` // hex
	ESNIEncLen        int    `json:"esni_enc_len,omitempty"`       // encrypted_sni: padded_length + 16
	ESNIPaddedLen     int    `json:"esni_padded_len,omitempty"`
	// ESNIDecrypted says that ESNI keys (CompareOptions.ESNIKeys) opened
	// the extension; InnerSNI then holds the name.
	ESNIDecrypted bool `json:"esni_decrypted,omitempty"`

	esniHello *ech.ClientHello // kept until openESNI
}

// observeESNI fills the ESNI view of a flow from its ClientHello.
func (f *Flow) observeESNI(ch *ech.ClientHello) {
	v, ok := ech.ObserveESNI(ch)
	if !ok {
		return
	}
	f.ESNI = true
	switch f.ECH {
	case ECHNone:
		f.ECH = ECHESNI
	default:
		f.warn("esni: the ClientHello carries both encrypted_client_hello and encrypted_server_name")
	}
	if v.Err != nil {
		f.warn("esni: encrypted_server_name: %v", v.Err)
		return
	}
	f.ESNISuite, f.ESNIKeyShareGroup = v.Suite, v.KeyShareGroup
	f.ESNIRecordDigest, f.ESNIEncLen = hex.EncodeToString(v.RecordDigest), v.EncryptedLen
	f.ESNIPaddedLen = max(v.PaddedLength, 0)
	f.esniHello = ch
}

// openESNI decrypts the server name with the key sets that match the
// record digest. Without keys the flow keeps the observer's view only.
func (f *Flow) openESNI(sets []*ech.ESNIKeySet) {
	ch := f.esniHello
	f.esniHello = nil
	if ch == nil || len(sets) == 0 {
		return
	}
	o, err := ech.OpenESNI(sets, ch)
	switch {
	case errors.Is(err, ech.ErrESNIDigest):
		return // published by someone else: nothing to learn
	case err != nil:
		f.warn("esni: decrypting the server name: %v", err)
		return
	}
	f.ESNIDecrypted, f.InnerSNI = true, o.ServerName
}

// esniCell is the ECH column of an ESNI flow.
func esniCell(f *Flow) string {
	s := ECHESNI
	if f.ESNIDecrypted {
		s += " decrypted"
	}
	return s + fmt.Sprintf(" suite=%#04x group=%s enc=%d digest=%.8s…", f.ESNISuite, ech.GroupName(f.ESNIKeyShareGroup),
		f.ESNIEncLen, f.ESNIRecordDigest)
}

// addALPN notes, in a scenario's summary, the ALPN protocols the observer
// read in the clear and those that only the keys revealed (inside ECH).
// ESNI never hid ALPN; ECH hides the inner ClientHello's, but a client
// may repeat them in the outer one (crypto/tls does).
func (s *ScenarioSummary) addALPN(f *Flow) {
	if f.ESNI {
		s.ESNIFlows++
	}
	for _, a := range f.ALPN {
		if !slices.Contains(s.ALPN, a) {
			s.ALPN = append(s.ALPN, a)
		}
	}
	for _, a := range f.InnerALPN {
		if !slices.Contains(f.ALPN, a) && !slices.Contains(s.HiddenALPN, a) {
			s.HiddenALPN = append(s.HiddenALPN, a)
		}
	}
}

// alpnCell shows the ALPN of a summary: "h2,http/1.1" and, with keys,
// "(hidden: h3)".
func alpnCell(s ScenarioSummary) string {
	out := strings.Join(s.ALPN, ",")
	if len(s.HiddenALPN) > 0 {
		out = strings.TrimSpace(out + " (hidden: " + strings.Join(s.HiddenALPN, ",") + ")")
	}
	return out
}

// csvESNIHeader are the ESNI columns WriteCSV appends.
var csvESNIHeader = []string{"esni", "esni_suite", "esni_key_share_group", "esni_record_digest", "esni_enc_len", "esni_padded_len"}

func csvESNI(f *Flow) []string {
	if !f.ESNI {
		return []string{"false", "", "", "", "", ""}
	}
	return []string{"true", hexOrEmpty(f.ESNISuite), GroupName(f.ESNIKeyShareGroup), f.ESNIRecordDigest,
		intOrEmpty(f.ESNIEncLen), intOrEmpty(f.ESNIPaddedLen)}
}
