package server_test

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/server"
)

// Example starts a shared-mode server with one ECH key and connects with
// a crypto/tls client that holds its config.
func Example() {
	ks := &ech.KeySet{}
	k, err := ech.GenerateKey(ech.KeyOptions{ConfigID: 1})
	if err != nil {
		panic(err)
	}
	ks.Add(k, true)
	srv, err := server.Start(server.Config{Keys: ks})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	list, _ := ks.ConfigList()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		panic(err)
	}
	tc := tls.Client(c, &tls.Config{ServerName: "secret.lab.test", RootCAs: srv.CA().Pool(),
		EncryptedClientHelloConfigList: list})
	defer tc.Close()
	if err := tc.Handshake(); err != nil {
		panic(err)
	}
	fmt.Println("ECH accepted:", tc.ConnectionState().ECHAccepted)
	// Output: ECH accepted: true
}
