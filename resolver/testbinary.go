package resolver

import (
	"fmt"
	"log"
	"os"
)

// ServeIfInvoked makes a test binary stand in for topo as a resolver: the
// real kernel starts a project's resolver as the running binary's hidden
// command "resolver serve --dir DIR", and in tests the running binary is
// the test binary. Call it from an init function of a package whose tests
// start resolvers; it returns at once unless os.Args asks for a resolver,
// and then serves until the process is stopped.
func ServeIfInvoked() {
	if len(os.Args) == 5 && os.Args[1] == "resolver" && os.Args[2] == "serve" && os.Args[3] == "--dir" {
		if err := Run(os.Args[4], &Forwarder{}, log.New(os.Stderr, "", log.LstdFlags)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}
