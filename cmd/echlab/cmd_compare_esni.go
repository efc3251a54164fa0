package main

import (
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab"
)

// addESNIKeys loads the --esni-keys directories (echlab esni keygen) into
// the options: Compare decrypts the server name of the ESNI ClientHellos
// whose record_digest they match.
func (c *compareFlags) addESNIKeys(opts *lab.CompareOptions) error {
	for _, dir := range c.esniKeys {
		set, err := ech.LoadESNIKeys(dir)
		if err != nil {
			return err
		}
		opts.ESNIKeys = append(opts.ESNIKeys, set)
	}
	return nil
}
