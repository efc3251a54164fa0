package interop

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// Reexec runs this program again with args in a new network namespace
// (CLONE_NEWNET: only a loopback interface, down) and waits for it. Its
// standard streams are this process's. It needs root.
func Reexec(args []string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: a network namespace needs root (run as root, or inside `unshare --net`)", ErrNotIsolated)
	}
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), NetnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("interop: in the network namespace: %w", err)
	}
	return nil
}
