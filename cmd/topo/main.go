// Command topo makes the kernel's networking match a topology file: bridge
// networks, containers as named network namespaces, addresses and routes.
package main

import (
	"errors"
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	err := newRootCmd(os.Stdout, os.Stderr).Execute()
	if err == nil {
		return
	}
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	fmt.Fprintf(os.Stderr, "topo: %v\n", err)
	os.Exit(1)
}

// exitError ends topo with a status but no message, as
// plan --detailed-exitcode does when there are changes.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
