package lab

import (
	"fmt"
	"slices"
	"strings"

	"github.com/echlab/echlab/ech"
)

// ech-hide-alpn (ClientSpec.HideALPN) is ECH hiding the ALPN as well as
// the name: the ClientHelloInner offers ALPN h2, the ClientHelloOuter
// carries no ALPN extension at all (RFC 9849 lets the outer differ), and
// key_share is compressed into ech_outer_extensions so that the outer is
// the size of a real client's. Go's crypto/tls cannot send such an outer,
// so the scenario seals crypto/tls's own ClientHello with ech.Seal, like
// the padding scenarios, and reads the handshake up to the ServerHello.

// hideALPNProtos is the ALPN the inner ClientHello of ech-hide-alpn offers.
var hideALPNProtos = []string{"h2"}

// sealHideALPN seals crypto/tls's ClientHello for name, offering only
// hideALPNProtos, to cfg with the recommended padding: ALPN dropped from
// the outer, key_share referenced through ech_outer_extensions.
func sealHideALPN(cfg *ech.Config, name string) (*ech.Sealed, error) {
	msg, err := goClientHello(name, hideALPNProtos)
	if err != nil {
		return nil, err
	}
	s, err := ech.Seal(cfg, msg, &ech.SealOptions{Padding: ech.Padding{Mode: ech.PaddingRecommended},
		DropFromOuter: []uint16{ech.ExtALPN}, Compress: []uint16{ech.ExtKeyShare}})
	if err != nil {
		return nil, err
	}
	// Check what an observer will read before anything is sent: a scenario
	// that claims to hide the ALPN must not show it.
	if len(s.Outer.ALPN) != 0 || s.Outer.ServerName == name {
		return nil, fmt.Errorf("lab: %s: the ClientHelloOuter shows ALPN %v and SNI %q", ScenarioHideALPN, s.Outer.ALPN, s.Outer.ServerName)
	}
	if !slices.Equal(s.Inner.ALPN, hideALPNProtos) {
		return nil, fmt.Errorf("lab: %s: the ClientHelloInner offers ALPN %v, want %v", ScenarioHideALPN, s.Inner.ALPN, hideALPNProtos)
	}
	return s, nil
}

// hideALPNNote describes the sealed ClientHello of an ech-hide-alpn case.
func hideALPNNote(s *ech.Sealed) string {
	return fmt.Sprintf("ClientHelloOuter sealed by ech.Seal without ALPN (inner ALPN %s, encrypted), key_share in ech_outer_extensions: %d bytes, %d padding bytes in the inner; handshake read up to the ServerHello only",
		strings.Join(s.Inner.ALPN, ","), len(s.Outer.Raw), s.PaddingLen)
}
