package lab

import (
	"maps"
	"slices"
	"unicode/utf8"

	"github.com/echlab/echlab/lab/observe"
)

// NameLengthSize is what an observer measures of the ClientHellos whose
// inner name (read with keys) has one length: the length side channel that
// padding-sweep shows.
type NameLengthSize struct {
	NameLength int `json:"name_length"` // of the inner server_name, in characters
	// ClientHelloBytes and ECHPayloadBytes are the largest seen on the
	// wire for that length (they do not vary between repeats).
	ClientHelloBytes int `json:"client_hello_bytes"`
	ECHPayloadBytes  int `json:"ech_payload_bytes"`
	Flows            int `json:"flows"`
}

// nameSizes gathers a row's sizes by inner name length.
type nameSizes map[int]*NameLengthSize

// addSize counts a flow to the service in its inner name's length.
func (r *Row) addSize(f *observe.Flow) {
	if f.InnerSNI == "" || f.ECHInnerInClear {
		return
	}
	if r.sizes == nil {
		r.sizes = nameSizes{}
	}
	n := utf8.RuneCountInString(f.InnerSNI)
	s := r.sizes[n]
	if s == nil {
		s = &NameLengthSize{NameLength: n}
		r.sizes[n] = s
	}
	s.Flows++
	s.ClientHelloBytes = max(s.ClientHelloBytes, f.ClientHelloLen)
	s.ECHPayloadBytes = max(s.ECHPayloadBytes, f.ECHPayloadLen)
}

// list orders the sizes by name length; nil unless there are several
// lengths (one length has no side channel to show).
func (m nameSizes) list() []NameLengthSize {
	if len(m) < 2 {
		return nil
	}
	var out []NameLengthSize
	for _, n := range slices.Sorted(maps.Keys(m)) {
		out = append(out, *m[n])
	}
	return out
}
