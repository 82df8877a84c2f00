package links

import (
	"strings"
	"testing"

	"github.com/topolab/topo/internal/sandbox"
)

// TestOnABusyHost runs the tests that read the host's forwarding and the
// /run/netns mount again, in a sandbox whose namespaces start as on a
// host that forwards and whose /run/netns is a shared mount with a
// namespace in it (as after topo up and down there, or on any Docker
// host): the harness must give them the same clean machine as anywhere.
func TestOnABusyHost(t *testing.T) {
	sandbox.Require(t)
	tests := []string{"TestTwoContainersOnABridge", "TestSysctl", "TestNetnsDirIsShared"}
	out := sandbox.RerunOnBusyHost(t, "^("+strings.Join(tests, "|")+")$")
	for _, name := range tests {
		if !strings.Contains(out, "--- PASS: "+name+" ") {
			t.Errorf("%s did not pass on a busy host:\n%s", name, out)
		}
	}
}
