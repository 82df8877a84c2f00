package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// exitInterrupted is the exit status of an up or down that a SIGINT or
// SIGTERM interrupted, whichever it was, as a shell reports Ctrl-C.
const exitInterrupted = 130

// interrupts watches for SIGINT and SIGTERM during an up or down. The
// first one calls its cancel (nil for down, which finishes removing); a
// second one ends topo at once with SIGKILL, as kill -9 would: the
// journal is left open, and the next up or down recovers from it. (Not
// the signals' default action: a shell starts background jobs with
// SIGINT ignored, and giving that back would ignore the second Ctrl-C.)
type interrupts struct {
	ch   chan os.Signal
	mu   sync.Mutex
	sig  os.Signal
	done chan struct{}
}

// watchInterrupts starts watching; what says on w what topo does now.
func watchInterrupts(w io.Writer, what string, cancel context.CancelFunc) *interrupts {
	in := &interrupts{ch: make(chan os.Signal, 1), done: make(chan struct{})}
	signal.Notify(in.ch, os.Interrupt, syscall.SIGTERM)
	go func() {
		defer close(in.done)
		sig, ok := <-in.ch
		if !ok {
			return
		}
		in.mu.Lock()
		in.sig = sig
		in.mu.Unlock()
		fmt.Fprintf(w, "\ntopo: %s: %s (a second one stops topo at once; the next up or down then recovers)\n", signalName(sig), what)
		if cancel != nil {
			cancel()
		}
		if _, ok := <-in.ch; ok {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // SIGKILL cannot be caught; wait for it to land
		}
	}()
	return in
}

// stop ends the watch and returns the signal that came, or nil.
func (in *interrupts) stop() os.Signal {
	signal.Stop(in.ch)
	close(in.ch)
	<-in.done
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.sig
}

func signalName(s os.Signal) string {
	if s == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}

// interrupted ends an up or down that sig interrupted: err, if any, is
// printed, and topo exits 130.
func interrupted(sig os.Signal, err error) error {
	return &exitError{code: exitInterrupted, err: err, sig: sig}
}
