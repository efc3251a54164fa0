package lab

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// FileCaptureKeys is the run's capture with its TLS secrets inside: a copy
// of capture.pcapng with a pcapng Decryption Secrets Block, so that
// Wireshark and tshark decrypt it without a separate keylog. It holds
// secrets and is written 0600.
const FileCaptureKeys = "capture-with-keys.pcapng"

// pcapng block and secrets types of the Decryption Secrets Block
// (draft-ietf-opsawg-pcapng §4.7).
const (
	pcapngDSB      = 0x0000000A
	dsbTLSKeyLog   = 0x544c534b // "TLSK": NSS key log (SSLKEYLOGFILE) lines
	dsbHeaderBytes = 8 + 8      // type, length, secrets type, secrets length
)

// tls13Labels are the SSLKEYLOGFILE labels of TLS 1.3 traffic secrets.
var tls13Labels = map[string]bool{
	"CLIENT_EARLY_TRAFFIC_SECRET": true, "CLIENT_HANDSHAKE_TRAFFIC_SECRET": true,
	"SERVER_HANDSHAKE_TRAFFIC_SECRET": true, "CLIENT_TRAFFIC_SECRET_0": true,
	"SERVER_TRAFFIC_SECRET_0": true, "EXPORTER_SECRET": true,
}

// InsertDSB returns a pcapng capture with a Decryption Secrets Block of
// type TLS key log holding keylog, placed right after the first section
// header (before any packet), in the section's byte order.
func InsertDSB(capture, keylog []byte) ([]byte, error) {
	if len(capture) < 28 || binary.LittleEndian.Uint32(capture) != pcapngSHB {
		return nil, fmt.Errorf("lab: a Decryption Secrets Block needs a pcapng capture: %w", ErrNotCapture)
	}
	var order binary.ByteOrder = binary.LittleEndian
	if binary.LittleEndian.Uint32(capture[8:]) != 0x1A2B3C4D {
		order = binary.BigEndian
	}
	shbLen := int(order.Uint32(capture[4:]))
	if shbLen < 28 || shbLen > len(capture) {
		return nil, &CaptureError{Format: "pcapng", Offset: 4, Field: "section header block length", Err: ErrMalformed}
	}
	padded := (len(keylog) + 3) &^ 3
	total := dsbHeaderBytes + padded + 4
	dsb := make([]byte, total)
	order.PutUint32(dsb[0:], pcapngDSB)
	order.PutUint32(dsb[4:], uint32(total))
	order.PutUint32(dsb[8:], dsbTLSKeyLog)
	order.PutUint32(dsb[12:], uint32(len(keylog)))
	copy(dsb[16:], keylog)
	order.PutUint32(dsb[total-4:], uint32(total))
	out := make([]byte, 0, len(capture)+total)
	out = append(out, capture[:shbLen]...)
	out = append(out, dsb...)
	return append(out, capture[shbLen:]...), nil
}

// outerAliases returns, for every ECH flow whose ClientHelloInner was
// opened, the keylog's TLS 1.3 secrets of the inner random (where RFC 9850
// and crypto/tls put them once ECH is accepted) repeated under the outer
// random. A tool that does not know ECH looks secrets up by the random of
// the ClientHello it sees, the outer one; these lines let it decrypt the
// connection. They are the same secrets, keyed by the random on the wire.
func outerAliases(keylog []byte, flows []*Flow) []byte {
	outerOf := map[string]string{}
	for _, f := range flows {
		if f.innerRandom != nil && f.ClientRandom != "" {
			outerOf[hex.EncodeToString(f.innerRandom)] = f.ClientRandom
		}
	}
	var b bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(keylog))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || !tls13Labels[fields[0]] {
			continue
		}
		if outer := outerOf[strings.ToLower(fields[1])]; outer != "" {
			fmt.Fprintf(&b, "%s %s %s\n", fields[0], outer, fields[2])
		}
	}
	return b.Bytes()
}

// writeCaptureWithKeys writes FileCaptureKeys: the capture with the
// keylog and the outer-random aliases of ECH flows in a Decryption Secrets
// Block.
func writeCaptureWithKeys(dir string, rep *Report) error {
	capture, err := os.ReadFile(filepath.Join(dir, FileCapture))
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	keylog, err := os.ReadFile(filepath.Join(dir, FileKeylog))
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if aliases := outerAliases(keylog, rep.Flows); len(aliases) > 0 {
		keylog = append(append(bytes.Clone(keylog), "# the TLS 1.3 secrets of ECH connections again, keyed by the outer ClientHello random\n"...), aliases...)
	}
	out, err := InsertDSB(capture, keylog)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, FileCaptureKeys), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600) // secrets: 0600
	if err != nil {
		return fmt.Errorf("lab: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // an older copy may have other modes
		f.Close()
		return fmt.Errorf("lab: %w", err)
	}
	if _, err := f.Write(out); err != nil {
		f.Close()
		return fmt.Errorf("lab: writing %s: %w", FileCaptureKeys, err)
	}
	return f.Close()
}
