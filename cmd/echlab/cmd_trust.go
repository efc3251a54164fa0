package main

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/echlab/echlab/internal/pki"
)

// pkiFlagUsage and caFlagUsage document --pki and --ca of the clients
// (client, query, play) the same way.
const (
	pkiFlagUsage = "folder of the lab CA: DIR/ca.crt, when it exists, is trusted besides the system's CAs"
	caFlagUsage  = "PEM file of the CAs to trust instead (wins over --pki)"
)

// trustPool returns the CAs a client trusts: the --ca file alone when it
// is given; else the system's CAs and pkiDir/ca.crt when that file
// exists; else nil (the system's CAs). found says whether a lab CA or a
// --ca file is in the pool.
func trustPool(pkiDir, caFile string) (pool *x509.CertPool, found bool, err error) {
	if caFile != "" {
		pool, err = pki.LoadPool(caFile)
		return pool, err == nil, err
	}
	if pkiDir == "" {
		return nil, false, nil
	}
	file := filepath.Join(pkiDir, pki.CACertFile)
	pem, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("--pki: %w", err)
	}
	if pool, err = x509.SystemCertPool(); err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, false, fmt.Errorf("--pki: %s holds no PEM certificate", file)
	}
	return pool, true, nil
}
