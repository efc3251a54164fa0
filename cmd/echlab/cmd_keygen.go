package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/echlab/echlab/ech"
)

func init() {
	register(command{name: "keygen", summary: "make or rotate an ECH key set directory and print its ech= value",
		run: func(args []string) error { return keygen(args, os.Stdout) }})
}

// keygenFlags are the flags of echlab keygen.
type keygenFlags struct {
	out, kems, kdfs, aeads, publicName string
	maxNameLength, configID, keys      int
	rotate, force                      bool
	grace                              time.Duration
}

func keygen(args []string, stdout io.Writer) error {
	fs := newFlags("keygen", "", "Write an ECH key set directory (one RFC 9934 PEM file per key, 0600, and keyset.json),\n"+
		"or with --rotate add new published keys to an existing one, and print the ECHConfigList\n"+
		"of the published keys as the ech= value of an HTTPS record.")
	f := &keygenFlags{}
	fs.StringVar(&f.out, "out", "", "key set directory (required)")
	fs.StringVar(&f.kems, "kem", "x25519", "KEM, or a comma list for one key per KEM: "+ech.KEMFlagNames())
	fs.StringVar(&f.kdfs, "kdf", "hkdf-sha256", "KDFs of the cipher suites, comma list: "+ech.KDFFlagNames())
	fs.StringVar(&f.aeads, "aead", "aes128gcm", "AEADs of the cipher suites, comma list: "+ech.AEADFlagNames())
	fs.StringVar(&f.publicName, "public-name", "public.lab.test", "public_name of the configs")
	fs.IntVar(&f.maxNameLength, "max-name-length", 0, "maximum_name_length of the configs (0..255)")
	fs.IntVar(&f.configID, "config-id", -1, "config id (0..255) of the single new key; default a random free one")
	fs.IntVar(&f.keys, "keys", 1, "number of keys to make per KEM")
	fs.BoolVar(&f.rotate, "rotate", false, "add the new keys to the existing set; its published keys stay accepted for --grace")
	fs.DurationVar(&f.grace, "grace", 24*time.Hour, "with --rotate: how long retired keys are still accepted")
	fs.BoolVar(&f.force, "force", false, "replace an existing key set instead of refusing")
	fs.Bool("esni", false, "make legacy ESNI keys instead: the other flags are those of echlab esni keygen")
	if rest, ok := esniKeygenArgs(args); ok {
		return esniKeygen(rest, stdout)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if f.out == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	ks, err := f.run(time.Now())
	if err != nil {
		return err
	}
	return printKeySet(stdout, f.out, ks)
}

// run loads or starts the set, adds the keys and saves it.
func (f *keygenFlags) run(now time.Time) (*ech.KeySet, error) {
	opts, kemIDs, err := f.options()
	if err != nil {
		return nil, err
	}
	ks := &ech.KeySet{}
	_, statErr := os.Stat(filepath.Join(f.out, ech.KeySetManifest))
	switch {
	case f.rotate:
		if ks, err = ech.LoadKeySet(f.out); err != nil {
			return nil, err
		}
		ks.Expire(now)
		ks.Retire(f.grace, now)
	case statErr == nil && !f.force:
		return nil, fmt.Errorf("%s already holds a key set; use --rotate to add keys or --force to replace it", f.out)
	}
	// Add newest-first puts the last key first in the list, so go backwards
	// to keep the order of --kem as the order of preference.
	for i := len(kemIDs) - 1; i >= 0; i-- {
		o := opts
		o.KEM = kemIDs[i]
		if o.ConfigID, err = f.pickID(ks); err != nil {
			return nil, err
		}
		k, err := ech.GenerateKey(o)
		if err != nil {
			return nil, err
		}
		ks.Add(k, true)
	}
	return ks, ech.SaveKeySet(f.out, ks)
}

func (f *keygenFlags) options() (ech.KeyOptions, []uint16, error) {
	var kemIDs []uint16
	for _, name := range strings.Split(f.kems, ",") {
		id, err := ech.ParseKEM(name)
		if err != nil {
			return ech.KeyOptions{}, nil, err
		}
		for range f.keys {
			kemIDs = append(kemIDs, id)
		}
	}
	suites, err := ech.ParseCipherSuites(f.kdfs, f.aeads)
	if err != nil {
		return ech.KeyOptions{}, nil, err
	}
	switch {
	case f.keys < 1:
		return ech.KeyOptions{}, nil, errors.New("--keys must be at least 1")
	case f.maxNameLength < 0 || f.maxNameLength > 255:
		return ech.KeyOptions{}, nil, errors.New("--max-name-length must be in 0..255")
	case f.configID > 255 || f.configID < -1:
		return ech.KeyOptions{}, nil, errors.New("--config-id must be in 0..255")
	case f.configID >= 0 && len(kemIDs) != 1:
		return ech.KeyOptions{}, nil, errors.New("--config-id needs exactly one new key")
	}
	return ech.KeyOptions{CipherSuites: suites, PublicName: f.publicName, MaximumNameLength: uint8(f.maxNameLength)}, kemIDs, nil
}

func (f *keygenFlags) pickID(ks *ech.KeySet) (uint8, error) {
	if f.configID < 0 {
		return ks.FreeConfigID(nil)
	}
	if len(ks.Lookup(uint8(f.configID))) > 0 {
		return 0, fmt.Errorf("config id %d is already used in %s", f.configID, f.out)
	}
	return uint8(f.configID), nil
}

// printKeySet prints the key table and the ech= value of the published keys.
func printKeySet(w io.Writer, dir string, ks *ech.KeySet) error {
	printKeyTable(w, dir, ks)
	list, err := ks.ConfigList()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "ech=%s\n", base64.StdEncoding.EncodeToString(list))
	return nil
}

// printKeyTable prints one line per key: id, KEM, public name, file, state.
// Private keys are never printed.
func printKeyTable(w io.Writer, dir string, ks *ech.KeySet) {
	fmt.Fprintf(w, "key set %s:\n", dir)
	for _, e := range ks.Entries() {
		state := "published"
		if !e.Published {
			state = "accepted until " + e.RetireAt.UTC().Format(time.RFC3339)
			if e.RetireAt.IsZero() {
				state = "accepted"
			}
		}
		c := e.Key.Config
		fmt.Fprintf(w, "  config_id %3d  %-14s %-24s %s  %s\n", c.ConfigID, ech.KEMFlagName(c.KEM), c.PublicName, e.File, state)
	}
}
