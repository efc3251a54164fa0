package main

import "testing"

// TestCompareProgressTerminal: on a terminal, a capture from progressMin
// bytes up gets a progress line, a smaller one does not.
func TestCompareProgressTerminal(t *testing.T) {
	tty := openPTY(t)
	if newProgress(tty, progressMin) == nil {
		t.Error("no progress line on a terminal for a large capture")
	}
	if newProgress(tty, progressMin-1) != nil {
		t.Error("a progress line for a small capture")
	}
}
