package e2e

import (
	"strings"
	"testing"
)

// TestFailureBesideTheLinksRollsBack: an up's DNS files are written while
// its veths are made (one batch, two threads). A file that cannot be
// written (topo refuses a world-writable /etc/netns) fails the up: the
// error names that step, not the veths it stopped, the rollback leaves the
// kernel and the files as they were, and no resolver runs. Once the folder
// is mended the same up works, and the containers reach each other by
// name.
func TestFailureBesideTheLinksRollsBack(t *testing.T) {
	h := newHost(t)
	h.mustSh("sysctl -qw net.ipv4.ip_forward=0")
	file := writeFile(t, "bs", `name: bs
networks:
  lan: {subnet: 10.86.9.0/24}
containers:
  a: {networks: [lan], ports: ["18080:80"]}
  b: {networks: [lan]}
  c: {networks: [lan]}
`)
	h.mustSh("chmod 1777 /etc/netns")
	before := withoutLocks(h.snapshot())
	_, errOut, code := h.topo("up", "-f", file)
	if code == 0 || !strings.Contains(errOut, "cat > /etc/netns/bs-") || !strings.Contains(errOut, "/etc/netns is owned by uid 0 with mode 1777") {
		t.Fatalf("up with a world-writable /etc/netns: exit %d, want the failure of a DNS file's step\n%s", code, errOut)
	}
	if strings.Contains(errOut, "not run") || strings.Contains(errOut, "also failed") {
		t.Errorf("the error reports the steps the failure stopped:\n%s", errOut)
	}
	if !strings.Contains(errOut, "the kernel is as it was") {
		t.Errorf("the rollback does not say the kernel is as it was:\n%s", errOut)
	}
	if after := withoutLocks(h.snapshot()); after != before {
		t.Errorf("the failed up left the kernel or the files changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if procs := h.procsMatching("resolver serve"); len(procs) > 0 {
		t.Errorf("a resolver runs after the failed up: %v", procs)
	}

	h.mustSh("chmod 755 /etc/netns")
	h.mustTopo("up", "-f", file)
	for _, name := range []string{"b", "c"} {
		if out, ok := h.sh(in("bs-a", "ping -c1 -W2 "+name)); !ok {
			t.Errorf("a cannot reach %s by name after the mended up:\n%s", name, out)
		}
	}
	h.mustTopo("down", "-f", file)
	if left := h.leftovers("bs"); strings.TrimSpace(left) != "" {
		t.Errorf("down left:\n%s", left)
	}
}
