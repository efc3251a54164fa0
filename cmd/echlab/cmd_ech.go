package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"

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
                            key-set directory; "-" or nothing reads stdin. Legacy ESNIKeys
                            (TXT value, file or ESNI key directory) are recognised
                            and printed as by echlab esni inspect.
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
	fs := newFlags("ech inspect", "[VALUE|FILE|DIR]", "Decode an ECHConfigList and print every field.")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return errUsage
	}
	arg := fs.Arg(0)
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
		return ech.DecodeConfigListText(arg)
	}
	if err != nil {
		return nil, err
	}
	if _, perr := ech.ParseConfigList(data); perr == nil {
		return data, nil // raw binary ECHConfigList
	}
	return ech.DecodeConfigListText(string(data))
}

func fileExists(name string) bool {
	info, err := os.Stat(name)
	return err == nil && info.Mode().IsRegular()
}

// describe prints every field of an ECHConfigList, in list order.
func describe(w io.Writer, raw []byte) error {
	l, err := ech.ParseConfigList(raw)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "ECHConfigList: %d bytes, %d config(s) of version 0xfe0d, %d skipped\n",
		len(raw), len(l.Configs), len(l.Skipped))
	skipped := map[int]ech.SkippedConfig{}
	for _, s := range l.Skipped {
		skipped[s.Index] = s
	}
	next := 0
	for i := 0; i < len(l.Configs)+len(l.Skipped); i++ {
		if s, ok := skipped[i]; ok {
			fmt.Fprintf(w, "[%d] skipped: version %#04x (unknown), %d bytes: %s\n", i, s.Version, len(s.Raw), hex.EncodeToString(s.Raw))
			continue
		}
		describeConfig(w, i, &l.Configs[next])
		next++
	}
	fmt.Fprintf(w, "ech=%s\n", base64.StdEncoding.EncodeToString(raw))
	return nil
}

func describeConfig(w io.Writer, i int, c *ech.Config) {
	fmt.Fprintf(w, "[%d] ECHConfig, %d bytes\n", i, len(c.Raw))
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
