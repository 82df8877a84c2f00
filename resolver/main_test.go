package resolver

import (
	"os"
	"strings"
	"testing"

	"github.com/topolab/topo/internal/sandbox"
)

// TestMain runs the tests inside private namespaces (see sandbox.Main),
// except in a fuzzing worker: the fuzzing coordinator that starts it is
// already inside the sandbox, and talks to it over pipes that a second
// re-execution would lose. FuzzHandler touches no kernel.
func TestMain(m *testing.M) {
	for _, a := range os.Args[1:] {
		if strings.HasPrefix(a, "-test.fuzzworker") {
			os.Exit(m.Run())
		}
	}
	sandbox.Main(m)
}
