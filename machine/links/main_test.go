package links

import (
	"testing"

	"github.com/topolab/topo/internal/sandbox"
	"github.com/topolab/topo/resolver"
)

// TestMain runs this package's tests inside private namespaces, so that
// the real kernel tests can never touch the host (see sandbox.Main).
func TestMain(m *testing.M) { sandbox.Main(m) }

// The machine's tests start resolvers as this test binary.
func init() { resolver.ServeIfInvoked() }
