package lab

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// A copy of lab/observe's tshark helper (test helpers do not cross packages).

// tsharkHello is one ClientHello as tshark reads it in a capture.
type tsharkHello struct {
	port  uint16   // the client's TCP or UDP port
	sni   string   // the server_name, empty if none
	types []string // the extension types, in decimal
}

// tsharkHellos returns every ClientHello (TCP and QUIC) tshark finds in
// the capture at path, in capture order. tlsPorts are TCP server ports
// tshark is told to decode as TLS: on random ports its heuristics
// sometimes take a stream for another protocol and miss the ClientHello.
func tsharkHellos(t *testing.T, tshark, path string, tlsPorts ...uint16) []tsharkHello {
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
	var hellos []tsharkHello
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
		hellos = append(hellos, tsharkHello{port: uint16(port), sni: cols[2], types: strings.Split(cols[3], ",")})
	}
	return hellos
}
