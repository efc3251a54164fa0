package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// signalContext starts catching SIGINT and SIGTERM: the first one says
// "echlab CMD: stopping on SIGNAL" on stderr and cancels the returned
// context. release stops catching them.
func signalContext(cmd string) (ctx context.Context, release func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-ch:
			fmt.Fprintf(os.Stderr, "echlab %s: stopping on %v\n", cmd, s)
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// stopSignals starts catching SIGINT and SIGTERM. Daemons call it before
// they announce their address, so that a signal sent as soon as the
// address is printed stops them cleanly instead of killing them. wait
// blocks until a signal comes (announced as by signalContext) and returns
// nil: a daemon stopped by a signal exits 0.
func stopSignals(cmd string) (wait func() error) {
	ctx, release := signalContext(cmd)
	return func() error {
		<-ctx.Done()
		release()
		return nil
	}
}
