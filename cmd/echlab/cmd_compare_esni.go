package main

import (
	"github.com/echlab/echlab/ech"
	"github.com/echlab/echlab/lab/observe"
)

// addESNIKeys loads the --esni-keys directories (echlab esni keygen) into
// the options: Compare decrypts the server name of the ESNI ClientHellos
// whose record_digest they match.
func (c *compareFlags) addESNIKeys(opts *observe.CompareOptions) error {
	for _, dir := range c.esniKeys {
		set, err := ech.LoadESNIKeys(dir)
		if err != nil {
			return err
		}
		opts.ESNIKeys = append(opts.ESNIKeys, set)
	}
	return nil
}
