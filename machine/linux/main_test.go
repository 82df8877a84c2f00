package linux_test

import (
	"testing"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/resolver"
)

// The real machine's tests start resolvers as this test binary.
func init() { resolver.ServeIfInvoked() }

// TestMain runs this package's tests inside private namespaces, so that
// the real machine's tests can never touch the host (see sandbox.Main).
func TestMain(m *testing.M) { sandbox.Main(m) }
