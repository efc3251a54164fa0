package labtest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TsharkHello is one ClientHello as tshark reads it in a capture.
type TsharkHello struct {
	Port  uint16   // the client's TCP or UDP port
	SNI   string   // the server_name, empty if none
	Types []string // the extension types, in decimal
}

// TsharkHellos returns every ClientHello (TCP and QUIC) tshark finds in
// the capture at path, in capture order. tlsPorts are TCP server ports
// tshark is told to decode as TLS: on random ports its heuristics
// sometimes take a stream for another protocol and miss the ClientHello.
func TsharkHellos(t testing.TB, tshark, path string, tlsPorts ...uint16) []TsharkHello {
	t.Helper()
	args := []string{"-r", path}
	for _, p := range tlsPorts {
		args = append(args, "-d", fmt.Sprintf("tcp.port==%d,tls", p))
	}
	args = append(args, "-Y", "tls.handshake.type == 1", "-T", "fields",
		"-E", "separator=/t", "-E", "aggregator=,", "-e", "tcp.srcport", "-e", "udp.srcport",
		"-e", "tls.handshake.extensions_server_name", "-e", "tls.handshake.extension.type")
	cmd := exec.Command(tshark, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, stderr.String())
	}
	var hellos []TsharkHello
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 4 {
			t.Fatalf("tshark line %q", line)
		}
		port, err := strconv.Atoi(cols[0] + cols[1])
		if err != nil {
			t.Fatalf("tshark line %q: port: %v", line, err)
		}
		hellos = append(hellos, TsharkHello{Port: uint16(port), SNI: cols[2], Types: strings.Split(cols[3], ",")})
	}
	return hellos
}
