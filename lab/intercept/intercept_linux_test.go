package intercept

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/echlab/echlab/internal/labtest"
	"github.com/echlab/echlab/internal/testutil"
	"github.com/echlab/echlab/lab/adversary"
	"github.com/echlab/echlab/lab/capture"
	"golang.org/x/sys/unix"
)

// The netns test runs in a copy of the test binary in a fresh network
// namespace (netnsEnv set); its clients run in other copies (clientEnv
// set), as a client the observer does not know about would, and one runs
// in the test's own process beside the relays.
const (
	netnsEnv  = "ECHLAB_INTERCEPT_NETNS"
	clientEnv = "ECHLAB_INTERCEPT_CLIENT"
)

// The fresh namespace has no other listener: fixed addresses are free.
var (
	tlsDest  = netip.MustParseAddrPort("127.0.0.53:443")
	udpDrop  = netip.MustParseAddrPort("127.0.0.53:5353")
	udpPass  = netip.MustParseAddrPort("127.0.0.53:5354")
	testSpec = fmt.Sprintf("block-sni secret.lab.test rst+drop-udp %d", udpDrop.Port())
)

func TestMain(m *testing.M) {
	if args := os.Getenv(clientEnv); args != "" {
		fmt.Println(runClient(strings.Fields(args)))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestInterceptNetns installs the redirect rules in a fresh network
// namespace with servers on 127.0.0.53 and an adversary blocking one SNI
// with a reset and one UDP port: that SNI is reset while another name
// passes, the dropped port gets no answer while the other does, a
// connection from the relays' own process is intercepted too (only the
// relays' sockets are marked), the process's group is left alone, and
// once Close returns the table is gone and the blocked name connects
// directly.
func TestInterceptNetns(t *testing.T) {
	if os.Getenv(netnsEnv) != "" {
		interceptInNetns(t)
		return
	}
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the intercept test needs root for its network namespace")
		}
		t.Skip("the intercept test needs root for its network namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInterceptNetns$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestInterceptNetns") {
		t.Fatalf("in the network namespace: %v\n%s", err, out)
	}
}

func interceptInNetns(t *testing.T) {
	linkUp(t, "lo")
	fx := labtest.NewTLS(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, fx.CA.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	serveTLS(t, fx.Server)
	serveUDP(t, udpDrop)
	serveUDP(t, udpPass)
	client := func(args ...string) string { return clientRun(t, caFile, args...) }

	// Control: without the rules, every name and port gets through.
	if got := client("tls", "secret.lab.test"); got != "ok hello secret.lab.test" {
		t.Fatalf("before Start: secret.lab.test: %s", got)
	}
	pols, err := adversary.Parse(testSpec)
	if err != nil {
		t.Fatal(err)
	}
	adv := adversary.New(pols)
	targets, err := ParseTargets(fmt.Sprintf("https/test=tcp/%s,udp/echo=udp/%s,udp/echo=udp/%s", tlsDest, udpDrop, udpPass))
	if err != nil {
		t.Fatal(err)
	}
	ic, err := Start(Config{Observer: &capture.Observer{Filter: adv}, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := Installed(DefaultTable); !ok || err != nil {
		t.Fatalf("after Start: table installed %v, %v", ok, err)
	}
	if got := client("tls", "secret.lab.test"); got != "err reset" {
		t.Errorf("intercepted, secret.lab.test: %s, want a reset", got)
	}
	if got := client("tls", "public.lab.test"); got != "ok hello public.lab.test" {
		t.Errorf("intercepted, public.lab.test: %s, want it to pass", got)
	}
	if got := client("udp", udpPass.String()); got != "ok ping" {
		t.Errorf("intercepted, udp %s: %s, want the echo", udpPass, got)
	}
	if got := client("udp", udpDrop.String()); got != "err timeout" {
		t.Errorf("intercepted, udp %s: %s, want no answer", udpDrop, got)
	}
	if _, err := tlsHello("secret.lab.test", fx.CA.Pool()); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("intercepted, secret.lab.test from the relays' process: %v, want a reset", err)
	}
	if g := os.Getgid(); g != 0 {
		t.Errorf("intercepted: the process's group ID is %d, want 0 as before", g)
	}
	checkDecisions(t, adv.Decisions(), ic.Relay(targets[0]))
	if err := ic.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := Installed(DefaultTable); ok || err != nil {
		t.Errorf("after Close: table installed %v, %v", ok, err)
	}
	if got := client("tls", "secret.lab.test"); got != "ok hello secret.lab.test" {
		t.Errorf("after Close: secret.lab.test: %s, want a direct connection", got)
	}
	if got := client("udp", udpDrop.String()); got != "ok ping" {
		t.Errorf("after Close: udp %s: %s, want the echo", udpDrop, got)
	}
}

// checkDecisions wants the rst of secret.lab.test and the pass of
// public.lab.test, both on the TCP relay toward the real server.
func checkDecisions(t *testing.T, ds []adversary.Decision, relay netip.AddrPort) {
	t.Helper()
	want := map[string]string{"secret.lab.test": "rst", "public.lab.test": "pass"}
	for _, d := range ds {
		if a, ok := want[d.SNI]; ok && d.Action == a && d.Flow.Backend == tlsDest.String() && d.Flow.Relay == relay {
			delete(want, d.SNI)
		}
	}
	if len(want) > 0 {
		t.Errorf("decisions lack %v: %+v", want, ds)
	}
}

// clientRun runs one client in a copy of the test binary.
func clientRun(t *testing.T, caFile string, args ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), clientEnv+"="+strings.Join(append([]string{caFile}, args...), " "))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client %v: %v", args, err)
	}
	return strings.TrimSpace(string(out))
}

// runClient is the client copy: "CAFILE tls NAME" makes a TLS connection
// to tlsDest for NAME and reads the server's line; "CAFILE udp ADDR"
// sends "ping" and waits 300 ms for the echo. It reports "ok REPLY" or
// "err reset|timeout|…".
func runClient(args []string) string {
	if len(args) != 3 {
		return "err usage"
	}
	pem, err := os.ReadFile(args[0])
	if err != nil {
		return "err " + err.Error()
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	var reply string
	if args[1] == "udp" {
		reply, err = udpPing(args[2])
	} else {
		reply, err = tlsHello(args[2], pool)
	}
	var ne net.Error
	switch {
	case err == nil:
		return "ok " + reply
	case errors.Is(err, syscall.ECONNRESET):
		return "err reset"
	case errors.As(err, &ne) && ne.Timeout():
		return "err timeout"
	}
	return "err " + err.Error()
}

func tlsHello(name string, pool *x509.CertPool) (string, error) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", tlsDest.String(), &tls.Config{ServerName: name, RootCAs: pool})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func udpPing(addr string) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	b := make([]byte, 64)
	n, err := c.Read(b)
	return string(b[:n]), err
}

// serveTLS answers each handshake with "hello NAME\n".
func serveTLS(t *testing.T, cfg *tls.Config) {
	ln, err := tls.Listen("tcp", tlsDest.String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if tc.Handshake() == nil {
					fmt.Fprintf(tc, "hello %s\n", tc.ConnectionState().ServerName)
				}
			}()
		}
	}()
}

// serveUDP echoes every datagram.
func serveUDP(t *testing.T, addr netip.AddrPort) {
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			pc.WriteToUDPAddrPort(b[:n], from)
		}
	}()
}

// linkUp sets an interface up (a fresh namespace's lo is down).
func linkUp(t *testing.T, name string) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		t.Fatal(err)
	}
}

// TestMarkingDialer: the Dialer Start gives the Observer marks every
// socket it dials, after the Observer's own Control or ControlContext,
// which still run; without a Dialer of its own it gets a 5 s timeout.
func TestMarkingDialer(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("SO_MARK needs CAP_NET_ADMIN: run as root")
		}
		t.Skip("SO_MARK needs CAP_NET_ADMIN")
	}
	addr := testutil.ServeEach(t, func(c net.Conn) { c.Close() })
	const mark = 0x5a5a
	var calls []string
	own := func(network, _ string, _ syscall.RawConn) error {
		calls = append(calls, "control "+network)
		return nil
	}
	ownCtx := func(_ context.Context, network, _ string, _ syscall.RawConn) error {
		calls = append(calls, "context "+network)
		return nil
	}
	for _, tc := range []struct {
		name string
		d    *net.Dialer
		want []string
	}{
		{"none", nil, nil},
		{"control", &net.Dialer{Control: own}, []string{"control tcp4", "control udp4"}},
		{"context", &net.Dialer{ControlContext: ownCtx}, []string{"context tcp4", "context udp4"}},
	} {
		calls = nil
		d := markingDialer(tc.d, mark)
		if tc.d == nil && d.Timeout != 5*time.Second {
			t.Errorf("%s: timeout %v", tc.name, d.Timeout)
		}
		for _, dial := range [][2]string{{"tcp", addr}, {"udp", "127.0.0.1:9"}} {
			c, err := d.Dial(dial[0], dial[1])
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			rc, err := c.(syscall.Conn).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var got int
			var gerr error
			rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK) })
			c.Close()
			if gerr != nil || got != mark {
				t.Errorf("%s %s: SO_MARK %#x, %v; want %#x", tc.name, dial[0], got, gerr, mark)
			}
		}
		if !slices.Equal(calls, tc.want) {
			t.Errorf("%s: the Observer's own hooks ran %q, want %q", tc.name, calls, tc.want)
		}
	}
}
