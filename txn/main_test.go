package txn_test

import (
	"testing"

	"github.com/topolab/topo/internal/sandbox"
)

// TestMain runs this package's tests inside private namespaces, so that
// the real kernel tests can never touch the host (see sandbox.Main). The
// fake kernel tests run there too, or here without root.
func TestMain(m *testing.M) { sandbox.Main(m) }
