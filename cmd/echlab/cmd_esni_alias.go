package main

import (
	"bytes"
	"io"
	"strconv"
	"strings"

	"github.com/echlab/echlab/ech"
)

// esniKeygenArgs says whether the echlab keygen arguments ask for ESNI
// keys (--esni, -esni or --esni=true), and returns the other arguments,
// which are then the flags of echlab esni keygen.
func esniKeygenArgs(args []string) (rest []string, esni bool) {
	for i, a := range args {
		if a == "--" {
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "esni" {
			continue
		}
		on := true
		if hasVal {
			on, _ = strconv.ParseBool(val)
		}
		rest = append(append(rest, args[:i]...), args[i+1:]...)
		return rest, on
	}
	return args, false
}

// sniffESNI lets echlab ech inspect accept ESNIKeys: when the input is not
// an ECHConfigList (nor an ECH key set directory) but is ESNIKeys, it
// returns true. Stdin is read once; the returned reader replays it.
func sniffESNI(arg string, stdin io.Reader) (io.Reader, bool) {
	if arg == "" || arg == "-" {
		data, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return bytes.NewReader(nil), false
		}
		stdin = bytes.NewReader(data)
		if _, err := readConfigList(arg, bytes.NewReader(data)); err == nil {
			return stdin, false
		}
		return stdin, isESNIInput(arg, bytes.NewReader(data))
	}
	if isDir(arg) {
		if _, err := ech.LoadKeySet(arg); err == nil {
			return stdin, false
		}
		_, err := ech.LoadESNIKeys(arg)
		return stdin, err == nil
	}
	if _, err := readConfigList(arg, stdin); err == nil {
		return stdin, false
	}
	return stdin, isESNIInput(arg, stdin)
}

// isESNIInput says whether the inspect argument holds ESNIKeys.
func isESNIInput(arg string, stdin io.Reader) bool {
	raw, err := readESNIInput(arg, stdin)
	if err != nil {
		return false
	}
	_, err = ech.ParseESNIKeysList(raw)
	return err == nil
}
