package observe

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"
)

// tls13Labels are the SSLKEYLOGFILE labels of TLS 1.3 traffic secrets.
var tls13Labels = map[string]bool{
	"CLIENT_EARLY_TRAFFIC_SECRET": true, "CLIENT_HANDSHAKE_TRAFFIC_SECRET": true,
	"SERVER_HANDSHAKE_TRAFFIC_SECRET": true, "CLIENT_TRAFFIC_SECRET_0": true,
	"SERVER_TRAFFIC_SECRET_0": true, "EXPORTER_SECRET": true,
}

// OuterAliases returns, for every ECH flow whose ClientHelloInner was
// opened, the keylog's TLS 1.3 secrets of the inner random (where RFC 9850
// and crypto/tls put them once ECH is accepted) repeated under the outer
// random. A tool that does not know ECH looks secrets up by the random of
// the ClientHello it sees, the outer one; these lines let it decrypt the
// connection. They are the same secrets, keyed by the random on the wire.
func OuterAliases(keylog []byte, flows []*Flow) []byte {
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
