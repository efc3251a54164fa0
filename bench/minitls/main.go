// Command minitls is the handshake benchmark's helper (bench/handshakes.sh):
// the minimal crypto/tls server echlab's servers are measured against, and
// the load generator.
//
//	minitls serve --pki DIR [--keys DIR] [--addr 127.0.0.1:0]
//	minitls load --addr HOST:PORT --pki DIR [--keys DIR] [--conns 8] [--duration 3s] [--pids PID,...]
//	minitls profile --mode shared|split --pki DIR --keys DIR --out FILE [--ech=false]
//
// serve is tls.Listen with EncryptedClientHelloKeys (from an echlab key set
// folder, if given) and net/http on top: no peek, no dissection, no log.
// load runs --conns crypto/tls clients, each doing full handshakes (no
// session cache, no tickets) one after another for --duration, and prints
// the rate and the CPU the --pids processes used per handshake. profile
// runs echlab's shared or split server in process with a load and writes a
// CPU profile of the whole process.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: minitls serve|load|profile [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "profile":
		err = profile(os.Args[2:])
	default:
		err = fmt.Errorf("unknown role %q (serve, load or profile)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "minitls:", err)
		os.Exit(1)
	}
}
