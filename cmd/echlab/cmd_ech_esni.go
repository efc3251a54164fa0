package main

import (
	"bytes"
	"io"

	"github.com/echlab/echlab/ech"
)

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
