//go:build !linux

package interop

import "os/exec"

// ownGroup leaves cmd as it is: process groups are set up on Linux only,
// where the harness runs (Run refuses elsewhere, see Isolated).
func ownGroup(cmd *exec.Cmd) {}

// killGroup kills the command's own process.
func killGroup(cmd *exec.Cmd) {
	if cmd.Process != nil {
		cmd.Process.Kill() //nolint:errcheck // it may have exited
	}
}
