package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
	dir, kems, kdfs, aeads, publicName string
	maxNameLength, configID, count     int
	rotate, force                      bool
	grace                              time.Duration
	set                                map[string]bool // flags given on the command line
}

func keygen(args []string, stdout io.Writer) error {
	fs := newFlags("keygen", "", "Write an ECH key set directory (one RFC 9934 PEM file per key, 0600, and keyset.json),\n"+
		"or with --rotate add new published keys to an existing one, and print the ECHConfigList\n"+
		"of the published keys as the ech= value of an HTTPS record. Legacy ESNI keys: echlab esni keygen.")
	f := &keygenFlags{}
	fs.StringVar(&f.dir, "keys", "keys", "key set folder to write (created 0700 if missing)")
	fs.StringVar(&f.kems, "kem", "x25519", "KEM, or a comma list for one key per KEM: "+ech.KEMFlagNames())
	fs.StringVar(&f.kdfs, "kdf", "hkdf-sha256", "KDFs of the cipher suites, comma list: "+ech.KDFFlagNames())
	fs.StringVar(&f.aeads, "aead", "aes128gcm", "AEADs of the cipher suites, comma list: "+ech.AEADFlagNames())
	fs.StringVar(&f.publicName, "public-name", "public.lab.test", "public_name of the configs")
	fs.IntVar(&f.maxNameLength, "max-name-length", 0, "maximum_name_length of the configs (0..255)")
	fs.IntVar(&f.configID, "config-id", -1, "config id (0..255) of the single new key; default a random free one")
	fs.IntVar(&f.count, "count", 1, "number of keys to make per KEM")
	fs.BoolVar(&f.rotate, "rotate", false, "add new keys to the existing set, like its published keys (same KEMs, suites, public name and\n"+
		"maximum name length, unless those flags are given); the published keys stay accepted for --grace")
	fs.DurationVar(&f.grace, "grace", 24*time.Hour, "with --rotate: how long retired keys are still accepted")
	fs.BoolVar(&f.force, "force", false, "replace an existing key set instead of refusing")
	oldOut := fs.String("out", "", hiddenUsage+"old spelling of --keys, from when --keys was the count")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	switch {
	case f.set["out"] && f.set["keys"]:
		return usageError("keygen", "--out is now --keys (the key set folder); the number of keys is --count")
	case f.set["out"]:
		f.dir = *oldOut
	}
	if f.dir == "" {
		return usageError("keygen", "--keys DIR: the key set folder cannot be empty")
	}
	ks, err := f.run(time.Now())
	if err != nil {
		return err
	}
	return printKeySet(stdout, f.dir, ks)
}

// run loads or starts the set, adds the keys and saves it.
func (f *keygenFlags) run(now time.Time) (*ech.KeySet, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	ks := &ech.KeySet{}
	_, statErr := os.Stat(filepath.Join(f.dir, ech.KeySetManifest))
	switch {
	case f.rotate:
		var err error
		if ks, err = ech.LoadKeySet(f.dir); err != nil {
			return nil, err
		}
	case statErr == nil && !f.force:
		return nil, fmt.Errorf("%s already holds a key set; use --rotate to add keys or --force to replace it", f.dir)
	}
	opts, err := f.newKeys(ks.PublishedOptions())
	if err != nil {
		return nil, err
	}
	if f.configID >= 0 && len(opts) != 1 {
		return nil, errors.New("--config-id needs exactly one new key")
	}
	ks.Retire(f.grace, now)
	ks.Expire(now) // keys past their grace (all retired ones with --grace 0) leave, and SaveKeySet removes their files
	// Add newest-first puts the last key first in the list, so go backwards
	// to keep the order of the new keys as the order of preference.
	for i := len(opts) - 1; i >= 0; i-- {
		o := opts[i]
		if o.ConfigID, err = f.pickID(ks); err != nil {
			return nil, err
		}
		k, err := ech.GenerateKey(o)
		if err != nil {
			return nil, err
		}
		ks.Add(k, true)
	}
	return ks, ech.SaveKeySet(f.dir, ks)
}

// check validates the numeric flags.
func (f *keygenFlags) check() error {
	switch {
	case f.count < 1:
		return errors.New("--count must be at least 1")
	case f.maxNameLength < 0 || f.maxNameLength > 255:
		return errors.New("--max-name-length must be in 0..255")
	case f.configID > 255 || f.configID < -1:
		return errors.New("--config-id must be in 0..255")
	}
	return nil
}

// newKeys returns the options of the new keys, in order of preference
// (--count of each). A new set takes everything from the flags. A rotation
// makes keys like the set's published ones (ech.KeySet.PublishedOptions:
// the same KEMs in the same order, cipher suites, public name and maximum
// name length); a flag given on the command line overrides its part, and
// --kem replaces the KEM list (each new key then like the newest published
// one otherwise).
func (f *keygenFlags) newKeys(published []ech.KeyOptions) ([]ech.KeyOptions, error) {
	like := f.rotate && len(published) > 0
	if !like {
		published = []ech.KeyOptions{{}}
	}
	base := published
	if !like || f.set["kem"] {
		base = nil
		for _, name := range strings.Split(f.kems, ",") {
			id, err := ech.ParseKEM(name)
			if err != nil {
				return nil, err
			}
			o := published[0]
			o.KEM = id
			base = append(base, o)
		}
	}
	var out []ech.KeyOptions
	for _, o := range base {
		suites, err := f.suites(o.CipherSuites, like)
		if err != nil {
			return nil, err
		}
		o.CipherSuites = suites
		if !like || f.set["public-name"] {
			o.PublicName = f.publicName
		}
		if !like || f.set["max-name-length"] {
			o.MaximumNameLength = uint8(f.maxNameLength)
		}
		for range f.count {
			out = append(out, o)
		}
	}
	return out, nil
}

// suites returns the cipher suites of a new key: those of the flags for a
// new set; on rotation those of the key it replaces (have), with the KDFs
// or the AEADs taken from --kdf or --aead when given, every KDF×AEAD pair.
func (f *keygenFlags) suites(have []ech.CipherSuite, like bool) ([]ech.CipherSuite, error) {
	flagSuites, err := ech.ParseCipherSuites(f.kdfs, f.aeads)
	switch {
	case err != nil:
		return nil, err
	case !like:
		return flagSuites, nil
	case !f.set["kdf"] && !f.set["aead"]:
		return have, nil
	}
	kdfSrc, aeadSrc := have, have
	if f.set["kdf"] {
		kdfSrc = flagSuites
	}
	if f.set["aead"] {
		aeadSrc = flagSuites
	}
	var kdfs, aeads []uint16
	for _, cs := range kdfSrc {
		if !slices.Contains(kdfs, cs.KDF) {
			kdfs = append(kdfs, cs.KDF)
		}
	}
	for _, cs := range aeadSrc {
		if !slices.Contains(aeads, cs.AEAD) {
			aeads = append(aeads, cs.AEAD)
		}
	}
	var out []ech.CipherSuite
	for _, k := range kdfs {
		for _, a := range aeads {
			out = append(out, ech.CipherSuite{KDF: k, AEAD: a})
		}
	}
	return out, nil
}

func (f *keygenFlags) pickID(ks *ech.KeySet) (uint8, error) {
	if f.configID < 0 {
		return ks.FreeConfigID(nil)
	}
	if len(ks.Lookup(uint8(f.configID))) > 0 {
		return 0, fmt.Errorf("config id %d is already used in %s", f.configID, f.dir)
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
