package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const addressFile = `name: addr
networks:
  lan: {subnet: 10.77.0.0/24}
containers:
  web:
    networks:
      lan: {ipv4_address: %s}
    command: ["sleep", "3600"]
  client: {networks: [lan]}
`

// TestAddressChangeOfARunningContainer changes the address of a container
// whose command runs: up succeeds, the command keeps running (same pid),
// the default route is back, and traffic reaches the new address and
// leaves through the gateway. A fault at each step of that change is
// rolled back to the kernel as it was, and up says so only then.
func TestAddressChangeOfARunningContainer(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "addr", fmt.Sprintf(addressFile, "10.77.0.10"))
	h.mustTopo("up", "-f", file)
	pid := h.pidOf("addr", "web")
	h.mustSh("ip netns exec addr-client ping -c1 -W2 10.77.0.10")

	changed := fmt.Sprintf(addressFile, "10.77.0.20")
	if err := os.WriteFile(file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	// Every step of the change fails once, and is rolled back exactly.
	plan := h.mustTopo("plan", "-f", file)
	steps := strings.Count(plan, "\n  ") // one line per step
	if steps < 4 || !strings.Contains(plan, "- ip -n addr-web route del default via 10.77.0.1 dev eth0") {
		t.Fatalf("plan of the change:\n%s", plan)
	}
	before := h.settledSnapshot()
	for at := 1; at <= steps; at++ {
		_, errOut, code := h.topoEnv([]string{fmt.Sprintf("TOPO_FAULT_AT=%d", at)}, "up", "-f", file)
		if code != 1 || !strings.Contains(errOut, "fault injected") || !strings.Contains(errOut, "the kernel is as it was") {
			t.Fatalf("up with a fault at step %d: exit %d\n%s", at, code, errOut)
		}
		if after := h.settledSnapshot(); after != before {
			t.Fatalf("after the rollback of a fault at step %d (-before +after):\n%s", at, cmp.Diff(before, after))
		}
		if got := h.pidOf("addr", "web"); got != pid || !h.alive(pid) {
			t.Fatalf("after the rollback of a fault at step %d: command pid %d (alive %v), want %d", at, got, h.alive(pid), pid)
		}
	}

	h.mustTopo("up", "-f", file)
	if got := h.pidOf("addr", "web"); got != pid || !h.alive(pid) {
		t.Errorf("after the address change the command is pid %d (alive %v), want %d still running", got, h.alive(pid), pid)
	}
	if routes := h.mustSh("ip -n addr-web route show default"); !strings.Contains(routes, "default via 10.77.0.1 dev eth0") {
		t.Errorf("default route after the change: %q", routes)
	}
	if a := h.eth0("addr-web"); a != "10.77.0.20/24" {
		t.Errorf("eth0 of web: %s, want 10.77.0.20/24", a)
	}
	h.mustSh("ip netns exec addr-client ping -c1 -W2 10.77.0.20 && ip netns exec addr-web ping -c1 -W2 10.77.0.1")
	if _, ok := h.sh("ip netns exec addr-client ping -c1 -W1 10.77.0.10"); ok {
		t.Error("the old address still answers")
	}
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after the change: exit %d, want 0", code)
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "addr")
}
