package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// Reexec runs this program again with args in a new network namespace
// (CLONE_NEWNET: only a loopback interface, down) and a new mount
// namespace (CLONE_NEWNS: so that UseResolvConf can point the system
// resolver at the lab without touching the machine's), and waits for it.
// Its standard streams are this process's. It needs root.
func Reexec(args []string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: a network namespace needs root (run as root, or inside `unshare --net`)", ErrNotIsolated)
	}
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), NetnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("interop: in the network namespace: %w", err)
	}
	return nil
}

// UseResolvConf makes the system resolver of this process and the programs
// it starts use nameserver (an IP address; port 53 is implied): it writes
// a resolv.conf in dir and bind-mounts it over /etc/resolv.conf, as
// `ip netns exec` does with /etc/netns/NAME/resolv.conf. It first makes
// every mount private, so that the bind mount stays in this process's
// mount namespace. Only in the namespace Reexec made: elsewhere it would
// change the machine's resolver, and it refuses.
func UseResolvConf(dir, nameserver string) error {
	if !InNetns() {
		return fmt.Errorf("%w: UseResolvConf outside the namespace Reexec made would change the machine's resolver", ErrNotIsolated)
	}
	conf := filepath.Join(dir, "resolv.conf")
	body := "# echlab interop: the lab's Do53, through the adversary\nnameserver " + nameserver + "\noptions timeout:2 attempts:1\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		return fmt.Errorf("interop: %w", err)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("interop: making mounts private: %w", err)
	}
	if err := syscall.Mount(conf, "/etc/resolv.conf", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Errorf("interop: bind-mounting %s over /etc/resolv.conf: %w", conf, err)
	}
	return nil
}
