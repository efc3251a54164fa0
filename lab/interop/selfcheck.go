package interop

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/internal/pki"
)

// selfCheck connects to addr with Go's crypto/tls and the key set's
// published configs and requires ECH to be accepted for SecretName: the
// lab itself works before any browser is blamed.
func selfCheck(addr string, ca *pki.CA, ks *ech.KeySet) error {
	list, err := ks.ConfigList()
	if err != nil {
		return err
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: SecretName, RootCAs: ca.Pool(),
		EncryptedClientHelloConfigList: list, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return fmt.Errorf("interop: lab self-check: %w", err)
	}
	defer c.Close()
	if !c.ConnectionState().ECHAccepted {
		return fmt.Errorf("interop: lab self-check: ECH not accepted by the lab server")
	}
	return nil
}
