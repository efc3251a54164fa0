package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/echlab/echlab/ech"
)

func init() {
	register(command{name: "ech", summary: "ECH config tools: ech inspect [VALUE|FILE|DIR]",
		run: func(args []string) error { return echCmd(args, os.Stdin, os.Stdout, os.Stderr) }})
}

const echUsage = `Usage: echlab ech SUBCOMMAND [args]

Subcommands:
  inspect [VALUE|FILE|DIR]  decode an ECHConfigList and print every field. The input is
                            base64, an ech= SvcParam (ech=AEX… or ech="AEX…", or a whole
                            HTTPS record line), an ECH PEM file, a raw/base64 file, or a
                            key-set directory; "-" reads stdin, and so does nothing when
                            stdin is not a terminal. Legacy ESNIKeys
                            (TXT value, file or ESNI key directory) are recognised
                            and printed as by echlab esni inspect.
                            Inspect is strict: each malformed or invalid config (e.g. a
                            public_name that is not a valid host name) is named with its
                            index, config_id when readable, field and reason, the other
                            configs are still printed, and the exit status is 1. Configs
                            of unknown versions or with mandatory extensions are shown
                            (a client skips them) but are not errors.
`

func echCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, echUsage)
		return errUsage
	}
	switch args[0] {
	case "inspect":
		return echInspect(args[1:], stdin, stdout)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, echUsage)
		return errHelp
	}
	fmt.Fprintf(stderr, "echlab ech: unknown subcommand %q\n\n%s", args[0], echUsage)
	return errUsage
}

func echInspect(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("ech inspect", "[VALUE|FILE|DIR]", "Decode an ECHConfigList and print every field. Each malformed or invalid\n"+
		"config is named (index, config_id, field, reason) and the others are still printed;\n"+
		"the exit status is 1 when any config is bad.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	arg := fs.Arg(0)
	if arg == "" && isTerminal(stdin) {
		fmt.Fprintln(os.Stderr, "echlab ech inspect: give a VALUE, FILE or DIR, or pipe the input to stdin")
		fs.Usage()
		return errUsage
	}
	stdin, isESNI := sniffESNI(arg, stdin)
	if isESNI {
		return esniInspect(fs.Args(), stdin, stdout)
	}
	if info, err := os.Stat(arg); err == nil && info.IsDir() {
		ks, err := ech.LoadKeySet(arg)
		if err != nil {
			return err
		}
		printKeyTable(stdout, arg, ks)
		list, err := ks.ConfigList()
		if err != nil {
			return err
		}
		return describe(stdout, list)
	}
	list, err := readConfigList(arg, stdin)
	if err != nil {
		return err
	}
	return describe(stdout, list)
}

// readConfigList takes the inspect argument: a file (PEM, base64 text or
// raw bytes), stdin for "" or "-", or else the value itself.
func readConfigList(arg string, stdin io.Reader) ([]byte, error) {
	var data []byte
	var err error
	switch {
	case arg == "" || arg == "-":
		data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
	case fileExists(arg):
		data, err = os.ReadFile(arg)
	default:
		list, err := ech.DecodeConfigListText(arg)
		if err != nil {
			return nil, missingPath("ech inspect", arg, err)
		}
		return list, nil
	}
	if err != nil {
		return nil, err
	}
	if l, _ := ech.ParseConfigListLenient(data); l != nil {
		return data, nil // a well-framed raw binary ECHConfigList; describe names bad configs
	}
	return ech.DecodeConfigListText(string(data))
}

// missingPath explains a failure to decode arg as a value: when arg looks
// like a path (a single word with a / or a .) that does not exist, the
// error says so instead of reporting bad base64.
func missingPath(cmd, arg string, decodeErr error) error {
	if strings.ContainsAny(arg, " \t\n=") || !strings.ContainsAny(arg, "/.") {
		return decodeErr
	}
	if _, err := os.Stat(arg); !errors.Is(err, os.ErrNotExist) {
		return decodeErr
	}
	return fmt.Errorf("%s: %s: no such file or folder (nor is it a base64 value)", cmd, arg)
}

// isTerminal says whether r is a terminal (a character device): reading
// it would wait for typing, not for piped input.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func fileExists(name string) bool {
	info, err := os.Stat(name)
	return err == nil && info.Mode().IsRegular()
}

// describe prints every field of an ECHConfigList, in list order. It is
// strict: the list framing must be valid, and each malformed or invalid
// config is named (index, config_id when readable, field, reason) while the
// others are still printed; the error returned then lists the bad ones.
func describe(w io.Writer, raw []byte) error {
	l, err := ech.ParseConfigListLenient(raw)
	if l == nil {
		return err
	}
	total := len(l.Configs) + len(l.Skipped)
	skipped := map[int]*ech.SkippedConfig{}
	known, unknown := len(l.Configs), 0
	var bad []string
	for i := range l.Skipped {
		s := &l.Skipped[i]
		skipped[s.Index] = s
		if s.Version == ech.Version {
			known++
		} else {
			unknown++
		}
		if s.Bad() {
			bad = append(bad, s.String())
		}
	}
	fmt.Fprintf(w, "ECHConfigList: %d bytes, %d config(s) of version 0xfe0d, %d skipped, %d bad\n",
		len(raw), known, unknown, len(bad))
	next := 0
	for i := 0; i < total; i++ {
		s, ok := skipped[i]
		switch {
		case !ok:
			describeConfig(w, i, &l.Configs[next])
			next++
		case s.Bad():
			describeBad(w, s)
		case s.Config != nil: // well formed, with a mandatory extension
			describeConfig(w, i, s.Config)
		default:
			fmt.Fprintf(w, "[%d] skipped: version %#04x (unknown), %d bytes: %s\n", i, s.Version, len(s.Raw), hex.EncodeToString(s.Raw))
		}
	}
	fmt.Fprintf(w, "ech=%s\n", base64.StdEncoding.EncodeToString(raw))
	if len(bad) > 0 {
		return fmt.Errorf("ech inspect: %d of %d configs malformed or invalid: %s", len(bad), total, strings.Join(bad, "; "))
	}
	return nil
}

// describeBad names a malformed or invalid config: its index, config_id
// when readable, the field at fault and why; then its fields when they
// could be read, else its bytes.
func describeBad(w io.Writer, s *ech.SkippedConfig) {
	id := "config_id unreadable"
	if cid, ok := s.ConfigID(); ok {
		id = fmt.Sprintf("config_id %d (%#02x)", cid, cid)
	}
	field, reason := "?", s.Err.Error()
	var fe *ech.FieldError
	if errors.As(s.Err, &fe) {
		field, reason = fe.Field, fe.Reason
	}
	fmt.Fprintf(w, "[%d] BAD ECHConfig, %d bytes, %s: field %s: %s\n", s.Index, len(s.Raw), id, field, reason)
	if s.Config != nil {
		describeFields(w, s.Config)
		return
	}
	fmt.Fprintf(w, "  raw:                 %s\n", hex.EncodeToString(s.Raw))
}

func describeConfig(w io.Writer, i int, c *ech.Config) {
	fmt.Fprintf(w, "[%d] ECHConfig, %d bytes\n", i, len(c.Raw))
	describeFields(w, c)
}

func describeFields(w io.Writer, c *ech.Config) {
	fmt.Fprintf(w, "  version:             %#04x\n", c.Version)
	fmt.Fprintf(w, "  config_id:           %d (%#02x)\n", c.ConfigID, c.ConfigID)
	fmt.Fprintf(w, "  kem_id:              %#04x %s\n", c.KEM, ech.KEMName(c.KEM))
	fmt.Fprintf(w, "  public_key:          %d bytes %s\n", len(c.PublicKey), hex.EncodeToString(c.PublicKey))
	fmt.Fprintf(w, "  cipher_suites:       %d\n", len(c.CipherSuites))
	for _, cs := range c.CipherSuites {
		fmt.Fprintf(w, "    - kdf_id %#04x %-12s aead_id %#04x %s\n", cs.KDF, ech.KDFName(cs.KDF), cs.AEAD, ech.AEADName(cs.AEAD))
	}
	fmt.Fprintf(w, "  maximum_name_length: %d\n", c.MaximumNameLength)
	fmt.Fprintf(w, "  public_name:         %s\n", c.PublicName)
	fmt.Fprintf(w, "  extensions:          %d\n", len(c.Extensions))
	for _, e := range c.Extensions {
		kind := "optional"
		if e.Mandatory() {
			kind = "MANDATORY (clients that do not know it must skip this config)"
		}
		fmt.Fprintf(w, "    - type %#04x %s, %d bytes %s\n", e.Type, kind, len(e.Data), hex.EncodeToString(e.Data))
	}
	if !ech.TLSSupportsKEM(c.KEM) {
		fmt.Fprintf(w, "  note:                Go's crypto/tls cannot use this KEM\n")
	}
}
