package iptables

import (
	"testing"

	"github.com/topolab/topo/internal/sandbox"
)

// TestMain runs this package's tests inside private namespaces, so that
// the real iptables tests can never touch the host (see sandbox.Main).
func TestMain(m *testing.M) { sandbox.Main(m) }
