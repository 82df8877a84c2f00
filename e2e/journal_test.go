package e2e

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestRecoverEarlierJournal: the journals in testdata/journal were left by
// topo before journals had a format version (an up killed at its last
// step, a down killed at its twelfth), as that binary wrote them. Here
// the kernel is first brought where each run was when it was killed (this
// topo, killed at the same step of the same plan), the journal it wrote
// replaced by the earlier one; then up must undo it, converge, and down
// leave nothing.
func TestRecoverEarlierJournal(t *testing.T) {
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "testdata", "journal")
	src, err := os.ReadFile(filepath.Join(dir, "topo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		journal string
		crashAt int
		down    bool
	}{{"up.journal", 29, false}, {"down.journal", 12, true}} {
		t.Run(c.journal, func(t *testing.T) {
			h := newHost(t)
			file := writeFile(t, "jfix", string(src))
			verb := "up"
			if c.down {
				h.mustTopo("up", "-f", file)
				verb = "down"
			}
			h.sh("TOPO_CRASH_AT=" + strconv.Itoa(c.crashAt) + " " + topoBin + " -f " + file + " " + verb)
			journal := "/run/topo/jfix/journal"
			if n := strings.TrimSpace(h.mustSh("grep -c '\"rec\":\"start\"' " + journal)); n != strconv.Itoa(c.crashAt) {
				t.Fatalf("the killed %s started %s steps, want %d", verb, n, c.crashAt)
			}
			earlier, err := os.ReadFile(filepath.Join(dir, c.journal))
			if err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(t.TempDir(), "journal")
			if err := os.WriteFile(tmp, earlier, 0o644); err != nil {
				t.Fatal(err)
			}
			h.mustSh("cp " + tmp + " " + journal)
			if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 2 {
				t.Errorf("plan with the earlier journal pending: exit %d\n%s", code, out)
			}
			_, errOut, code := h.topo("up", "-f", file)
			if code != 0 || !strings.Contains(errOut, "undoing it first") || !strings.Contains(errOut, "Project jfix: undid") {
				t.Fatalf("up after the earlier %s: exit %d\n%s", verb, code, errOut)
			}
			if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
				t.Errorf("plan after the recovery: exit %d\n%s", code, out)
			}
			h.mustTopo("down", "-f", file)
			if left := h.leftovers("jfix"); strings.TrimSpace(left) != "" {
				t.Errorf("down left:\n%s", left)
			}
		})
	}
}
