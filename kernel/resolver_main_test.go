package kernel

import (
	"fmt"
	"log"
	"os"

	"github.com/topolab/topo/resolver"
)

// The real kernel starts a project's resolver as the running binary's
// hidden command "resolver serve --dir DIR" (ResolverArgv). In these tests
// that binary is the test binary, which therefore serves as the resolver
// when started so, before any test or sandbox machinery runs.
func init() {
	if len(os.Args) == 5 && os.Args[1] == "resolver" && os.Args[2] == "serve" && os.Args[3] == "--dir" {
		if err := resolver.Run(os.Args[4], &resolver.Forwarder{}, log.New(os.Stderr, "", log.LstdFlags)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
}
