package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/echlab/echlab/ech"
)

func init() {
	register(command{name: "esni", summary: "legacy ESNI (draft-02/03) keys: esni keygen | esni inspect",
		run: func(args []string) error { return esniCmd(args, os.Stdin, os.Stdout, os.Stderr) }})
}

const esniUsage = `Usage: echlab esni SUBCOMMAND [flags] [args]

ESNI is ECH's retired predecessor (draft-ietf-tls-esni-02/-03). echlab handles
its keys, DNS values and ClientHello bytes; no TLS library completes ESNI.

Subcommands:
  keygen --keys DIR [--public-name NAME] [--padded-length N] [--valid DURATION] ...
                            make ESNI keys, save them in DIR (esni.pem 0600, esni.txt)
                            and print the _esni.NAME TXT record value
  inspect [VALUE|FILE|DIR]  print every field of ESNIKeys (base64 TXT value, hex,
                            a TXT record line, a file or a key directory; "-" reads
                            stdin, and so does nothing when stdin is not a terminal)
                            and whether checksum and validity hold
`

func esniCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, esniUsage)
		return errUsage
	}
	switch args[0] {
	case "keygen":
		return esniKeygen(args[1:], stdout)
	case "inspect":
		return esniInspect(args[1:], stdin, stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, esniUsage)
		return errHelp
	}
	fmt.Fprintf(stderr, "echlab esni: unknown subcommand %q\n\n%s", args[0], esniUsage)
	return errUsage
}

func esniKeygen(args []string, stdout io.Writer) error {
	fs := newFlags("esni keygen", "", "Generate ESNI keys, save them and print the TXT record value.")
	out := fs.String("keys", "", "ESNI key folder to write (required)")
	alias(fs, "out", "keys")
	publicName := fs.String("public-name", "public.lab.test", "public_name (draft-03 keys only)")
	name := fs.String("name", "", "owner of the TXT record is _esni.NAME (default: the public name)")
	padded := fs.Uint("padded-length", 260, "padded_length: the ServerNameList is padded to this size")
	valid := fs.Duration("valid", 24*time.Hour, "validity period from now (not_after - not_before)")
	draft := fs.Int("draft", 3, "ESNIKeys version: 2 (0xff01, deployed, no public_name) or 3 (0xff02)")
	groups := fs.String("groups", "x25519", "key share groups: x25519,p256,p384,p521")
	suites := fs.String("suites", "aes128gcm", "cipher suites: aes128gcm,aes256gcm,chacha20poly1305")
	addrs := fs.String("address-set", "", "comma-separated IP addresses for the address_set extension")
	force := fs.Bool("force", false, "overwrite an existing key directory")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	switch {
	case *out == "":
		return usageError("esni keygen", "give --keys DIR, the ESNI key folder to write")
	case *padded > 0xffff:
		return usageError("esni keygen", "--padded-length must be at most 65535")
	}
	o, err := esniOptions(*draft, *publicName, *groups, *suites, *addrs)
	if err != nil {
		return err
	}
	o.PaddedLength, o.Valid = uint16(*padded), *valid
	if _, err := os.Stat(filepath.Join(*out, ech.ESNIKeyFile)); err == nil && !*force {
		return fmt.Errorf("%s already holds ESNI keys (use --force to replace them)", *out)
	}
	set, err := ech.GenerateESNIKeys(o)
	if err != nil {
		return err
	}
	if err := ech.SaveESNIKeys(*out, set); err != nil {
		return err
	}
	owner := *name
	if owner == "" {
		owner = set.Keys.PublicName
	}
	if owner == "" {
		owner = "NAME"
	}
	k := set.Keys
	fmt.Fprintf(stdout, "ESNI keys %s: version %#04x, %d key share(s), padded_length %d, valid %s to %s\n",
		*out, k.Version, len(k.Keys), k.PaddedLength, k.NotBeforeTime().Format(time.RFC3339), k.NotAfterTime().Format(time.RFC3339))
	fmt.Fprintf(stdout, "_esni.%s. %d IN TXT %q\n", strings.TrimSuffix(owner, "."), txtTTL(*valid), set.TXT())
	fmt.Fprintln(stdout, set.TXT())
	return nil
}

// txtTTL keeps the record cached for at most a tenth of the validity, as
// the draft asks the TTL to expire before the keys do.
func txtTTL(valid time.Duration) int { return max(1, min(3600, int(valid.Seconds()/10))) }

func esniOptions(draft int, publicName, groups, suites, addrs string) (ech.ESNIKeyOptions, error) {
	o := ech.ESNIKeyOptions{PublicName: publicName}
	switch draft {
	case 2:
		o.Version, o.PublicName = ech.ESNIVersionDraft02, ""
	case 3:
		o.Version = ech.ESNIVersionDraft03
	default:
		return o, fmt.Errorf("--draft %d: want 2 or 3", draft)
	}
	groupIDs := map[string]uint16{"x25519": ech.GroupX25519, "p256": ech.GroupP256, "p384": ech.GroupP384, "p521": ech.GroupP521}
	for _, g := range strings.Split(groups, ",") {
		id, ok := groupIDs[strings.TrimSpace(g)]
		if !ok {
			return o, fmt.Errorf("--groups: unknown group %q (x25519|p256|p384|p521)", g)
		}
		o.Groups = append(o.Groups, id)
	}
	suiteIDs := map[string]uint16{"aes128gcm": ech.TLSAES128GCMSHA256, "aes256gcm": ech.TLSAES256GCMSHA384,
		"chacha20poly1305": ech.TLSChaCha20Poly1305SHA256}
	for _, s := range strings.Split(suites, ",") {
		id, ok := suiteIDs[strings.TrimSpace(s)]
		if !ok {
			return o, fmt.Errorf("--suites: unknown suite %q (aes128gcm|aes256gcm|chacha20poly1305)", s)
		}
		o.CipherSuites = append(o.CipherSuites, id)
	}
	for _, a := range strings.Split(addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil {
			return o, fmt.Errorf("--address-set: %w", err)
		}
		o.AddressSet = append(o.AddressSet, ip)
	}
	return o, nil
}

func esniInspect(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("esni inspect", "[VALUE|FILE|DIR]", "Print every field of ESNIKeys and check checksum and validity.")
	at := fs.String("now", "", "check validity at this RFC 3339 time instead of now")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	now := time.Now()
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return fmt.Errorf("--now: %w", err)
		}
		now = t
	}
	if fs.Arg(0) == "" && isTerminal(stdin) {
		fmt.Fprintln(os.Stderr, "echlab esni inspect: give a VALUE, FILE or DIR, or pipe the input to stdin")
		fs.Usage()
		return errUsage
	}
	raw, err := readESNIInput(fs.Arg(0), stdin)
	if err != nil {
		return err
	}
	list, err := ech.ParseESNIKeysList(raw)
	if err != nil {
		return err
	}
	var failed error
	for i, k := range list {
		if err := describeESNIKeys(stdout, i, k, now); err != nil && failed == nil {
			failed = err
		}
	}
	return failed
}

// readESNIInput takes a key directory or esni.pem, a file holding raw or
// text ESNIKeys, stdin for "" or "-", or else the value itself.
func readESNIInput(arg string, stdin io.Reader) ([]byte, error) {
	var data []byte
	var err error
	switch {
	case arg == "" || arg == "-":
		data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	case isDir(arg):
		set, err := ech.LoadESNIKeys(arg)
		if err != nil {
			return nil, err
		}
		return set.Keys.Raw, nil
	case fileExists(arg):
		data, err = os.ReadFile(arg)
	default:
		raw, err := ech.DecodeESNIKeysText(arg)
		if err != nil {
			return nil, missingPath("esni inspect", arg, err)
		}
		return raw, nil
	}
	if err != nil {
		return nil, err
	}
	if set, err := ech.ParseESNIKeyPEM(data); err == nil {
		return set.Keys.Raw, nil
	}
	if _, err := ech.ParseESNIKeysList(data); err == nil {
		return data, nil // raw binary
	}
	return ech.DecodeESNIKeysText(string(data))
}

func isDir(name string) bool {
	info, err := os.Stat(name)
	return err == nil && info.IsDir()
}

func describeESNIKeys(w io.Writer, i int, k *ech.ESNIKeys, now time.Time) error {
	fmt.Fprintf(w, "[%d] ESNIKeys, %d bytes\n", i, len(k.Raw))
	draft := map[uint16]string{ech.ESNIVersionDraft02: "draft-ietf-tls-esni-01/02", ech.ESNIVersionDraft03: "draft-ietf-tls-esni-03"}
	fmt.Fprintf(w, "  version:       %#04x (%s)\n", k.Version, draft[k.Version])
	checksumErr := k.CheckChecksum()
	fmt.Fprintf(w, "  checksum:      %x %s\n", k.Checksum, verdict(checksumErr))
	if k.Version == ech.ESNIVersionDraft03 {
		fmt.Fprintf(w, "  public_name:   %s\n", k.PublicName)
	}
	fmt.Fprintf(w, "  keys:          %d\n", len(k.Keys))
	for _, ks := range k.Keys {
		fmt.Fprintf(w, "    - group %#04x %-10s %d bytes %s\n", ks.Group, ech.GroupName(ks.Group), len(ks.Data), hex.EncodeToString(ks.Data))
	}
	fmt.Fprintf(w, "  cipher_suites: %d\n", len(k.CipherSuites))
	for _, cs := range k.CipherSuites {
		digest, err := k.RecordDigest(cs)
		if err != nil {
			fmt.Fprintf(w, "    - %#04x (unsupported)\n", cs)
			continue
		}
		fmt.Fprintf(w, "    - %#04x record_digest %x\n", cs, digest)
	}
	fmt.Fprintf(w, "  padded_length: %d\n", k.PaddedLength)
	fmt.Fprintf(w, "  not_before:    %d (%s)\n", k.NotBefore, k.NotBeforeTime().Format(time.RFC3339))
	fmt.Fprintf(w, "  not_after:     %d (%s)\n", k.NotAfter, k.NotAfterTime().Format(time.RFC3339))
	validityErr := k.CheckValidity(now)
	fmt.Fprintf(w, "  validity:      %s at %s\n", verdict(validityErr), now.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "  extensions:    %d\n", len(k.Extensions))
	for _, e := range k.Extensions {
		fmt.Fprintf(w, "    - type %#04x, %d bytes %s\n", e.Type, len(e.Data), hex.EncodeToString(e.Data))
		if e.Type == ech.ESNIExtAddressSet {
			addrs, err := ech.ParseAddressSet(e.Data)
			fmt.Fprintf(w, "      address_set: %v %s\n", addrs, verdict(err))
		}
	}
	err := k.Validate(now)
	fmt.Fprintf(w, "  usable:        %s\n", verdict(err))
	fmt.Fprintf(w, "TXT %s\n", k.TXT())
	return err
}

func verdict(err error) string {
	var fe *ech.FieldError
	switch {
	case err == nil:
		return "OK"
	case errors.As(err, &fe) && fe.Field == "not_before" && errors.Is(err, ech.ErrESNIExpired):
		return "NOT YET VALID (" + err.Error() + ")"
	case errors.Is(err, ech.ErrESNIExpired):
		return "EXPIRED (" + err.Error() + ")"
	}
	return "BAD (" + err.Error() + ")"
}
