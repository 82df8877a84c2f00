// Command topo makes the kernel's networking match a topology file: bridge
// networks, containers as named network namespaces, addresses and routes.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/machine/linux"
	"github.com/topolab/topo/names"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	err := newRootCmd(os.Stdout, os.Stderr, realEnv()).Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.sig != nil {
			msg := "done"
			if ee.err != nil {
				msg = ee.err.Error()
			}
			fmt.Fprintf(os.Stderr, "topo: interrupted by %s: %s\n", signalName(ee.sig), msg)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintf(os.Stderr, "topo: %v\n", err)
	os.Exit(1)
}

// exitError ends topo with a status but no message, as
// plan --detailed-exitcode does when there are changes; or, after an
// interrupt (sig), with what the interrupted command ended with (err).
type exitError struct {
	code int
	err  error
	sig  os.Signal
}

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// realEnv is the machine topo runs on, as root, with its runtime files
// where TOPO_STATE_DIR says (names.DefaultRoot if unset).
func realEnv() env {
	rt := names.DefaultRuntime
	if r := os.Getenv(names.RootEnv); r != "" {
		rt = names.Runtime{Root: r}
	}
	return env{
		runtime: rt,
		root:    os.Geteuid() == 0,
		machine: func(ctx context.Context, prefetch bool) (machine.Machine, error) {
			m, err := linux.New(ctx, linux.Options{Runtime: rt, Prefetch: prefetch})
			if err != nil {
				return nil, err
			}
			return m, nil
		},
		growFileTable: linux.GrowFileTable,
	}
}
