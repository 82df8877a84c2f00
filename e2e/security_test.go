package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// collidingProject is a project of two containers on one network; p19847
// and p42256 share the 8 hash digits earlier topo named chains with.
func collidingProject(name, subnet string) string {
	return "name: " + name + "\nnetworks:\n  lan: {subnet: " + subnet + "}\ncontainers:\n  a: {networks: [lan]}\n  b: {networks: [lan]}\n"
}

// TestCollidingProjectsStayApart: two projects whose names collided in
// earlier topo's chain names keep their own rules: neither up removes the
// other's, their containers do not reach each other, and each down works.
func TestCollidingProjectsStayApart(t *testing.T) {
	need(t, "ping")
	h := newHost(t)
	one, two := writeFile(t, "p19847", collidingProject("p19847", "10.81.1.0/24")), writeFile(t, "p42256", collidingProject("p42256", "10.81.2.0/24"))
	h.mustTopo("up", "-f", one)
	h.mustTopo("up", "-f", two)
	ping := func(ns, addr string, want bool) {
		t.Helper()
		if _, ok := h.sh(in(ns, "ping -c1 -W1 "+addr)); ok != want {
			t.Errorf("%s ping %s: reached %v, want %v", ns, addr, ok, want)
		}
	}
	ping("p19847-a", "10.81.1.3", true)
	ping("p42256-a", "10.81.2.3", true)
	ping("p19847-a", "10.81.2.2", false)
	ping("p42256-a", "10.81.1.2", false)
	if out, _, code := h.topo("plan", "-f", one, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan of p19847 after p42256's up: exit %d\n%s", code, out)
	}
	h.mustTopo("down", "-f", two)
	if out, _, code := h.topo("plan", "-f", one, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan of p19847 after p42256's down: exit %d\n%s", code, out)
	}
	ping("p19847-a", "10.81.1.3", true)
	h.mustTopo("down", "-f", one)
	if out := h.mustSh("iptables-save"); strings.Contains(out, "TOPO-") || strings.Contains(out, "topo:") {
		t.Errorf("the downs left rules:\n%s", out)
	}
}

// asEarlierTopo renames a project's chains to the 8-digit names topo gave
// them before, in the kernel, as if that binary had made them.
func (h *host) asEarlierTopo(project string) {
	h.t.Helper()
	sum := sha256.Sum256([]byte(project))
	full, short := "TOPO-"+hex.EncodeToString(sum[:])[:18]+"-", "TOPO-"+hex.EncodeToString(sum[:])[:8]+"-"
	fw := filepath.Join(h.t.TempDir(), "rules")
	h.mustSh("iptables-save > " + fw + " && grep -q " + full + " " + fw + " && sed -i s/" + full + "/" + short + "/g " + fw + " && iptables-restore < " + fw)
	if out := h.mustSh("iptables-save"); strings.Contains(out, full) || !strings.Contains(out, short) {
		h.t.Fatalf("renaming the chains failed:\n%s", out)
	}
}

// TestChainsOfAnEarlierTopo: a project whose chains an earlier topo named
// is moved to the new names by up, and cleaned by down.
func TestChainsOfAnEarlierTopo(t *testing.T) {
	need(t, "ping")
	h := newHost(t)
	file := writeFile(t, "old", collidingProject("old", "10.82.1.0/24"))
	h.mustTopo("up", "-f", file)
	want := h.snapshot()
	h.asEarlierTopo("old")
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 2 {
		t.Errorf("plan with the old chain names: exit %d, want 2", code)
	}
	h.mustTopo("up", "-f", file)
	if d := cmp.Diff(want, h.snapshot()); d != "" {
		t.Errorf("up from the old names (-want +got):\n%s", d)
	}
	if _, ok := h.sh(in("old-a", "ping -c1 -W1 10.82.1.3")); !ok {
		t.Error("a cannot reach b after the move")
	}
	h.asEarlierTopo("old")
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "old")
	if out := h.mustSh("iptables-save"); strings.Contains(out, "TOPO-") || strings.Contains(out, "topo:") {
		t.Errorf("down from the old names left rules:\n%s", out)
	}
}

// TestCollidingInterfaceNames: two networks, or two endpoints, of a file
// that would get the same interface name are validate errors naming both,
// and up refuses them before its first step.
func TestCollidingInterfaceNames(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "hash", `name: hash
networks:
  nc87f78da9ac2: {}
  n3eea6ea1a78d: {}
  n: {}
containers:
  c39e207c2b30: {networks: [n]}
  cb9736cc70dd: {networks: [n]}
`)
	_, errOut, code := h.topo("validate", "-f", file)
	if code != 1 {
		t.Errorf("validate: exit %d", code)
	}
	for _, want := range []string{
		file + `:4:3: network "n3eea6ea1a78d": its bridge would be named br-e0061739e713, like network "nc87f78da9ac2"'s (line 3)`,
		file + `:8:29: container "cb9736cc70dd": its veth to network "n" would be named veth7bfcea6ff23, like container "c39e207c2b30"'s to network "n" (line 7)`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate's stderr lacks %q:\n%s", want, errOut)
		}
	}
	before := h.snapshot()
	if _, errOut, code := h.topo("up", "-f", file); code != 1 || !strings.Contains(errOut, "br-e0061739e713") || strings.Contains(errOut, "exists") {
		t.Errorf("up: exit %d, stderr:\n%s", code, errOut)
	}
	if d := cmp.Diff(before, h.snapshot()); d != "" {
		t.Errorf("up changed the kernel (-before +after):\n%s", d)
	}
}

// TestInputsCheckedBeforeTheKernel: a reserved subnet and a NUL byte in a
// command are validate errors at their line and column, and up changes
// nothing.
func TestInputsCheckedBeforeTheKernel(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "bad", "name: bad\nnetworks:\n  lo: {subnet: 127.42.0.0/16}\n  ll: {subnet: 169.254.0.0/16}\ncontainers:\n  a:\n    networks: [lo]\n    command: [\"sh\", \"-c\", \"echo a\\0b\"]\n")
	_, errOut, code := h.topo("validate", "-f", file)
	if code != 1 {
		t.Errorf("validate: exit %d", code)
	}
	for _, want := range []string{
		file + ":3:16: network \"lo\": subnet 127.42.0.0/16 is in the loopback block 127.0.0.0/8",
		file + ":4:16: network \"ll\": subnet 169.254.0.0/16 is in the link-local block 169.254.0.0/16",
		file + `:8:27: container "a": command argument 2 ("echo a\x00b") holds a NUL byte`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate's stderr lacks %q:\n%s", want, errOut)
		}
	}
	before := h.snapshot()
	if _, _, code := h.topo("up", "-f", file); code != 1 {
		t.Errorf("up: exit %d", code)
	}
	if d := cmp.Diff(before, h.snapshot()); d != "" {
		t.Errorf("up changed the kernel (-before +after):\n%s", d)
	}
}
