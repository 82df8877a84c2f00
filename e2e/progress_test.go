package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestProgressOnATerminal: on a terminal (script gives topo one), down
// runs its deletions as batches: every command shows on its own line with
// a counter that counts the commands shown, each step's result ends its
// own last line, and no result stands alone. Piped, the summary has the
// run's duration too.
func TestProgressOnATerminal(t *testing.T) {
	need(t, "script")
	h := newHost(t)
	file := example("three")
	up := h.mustTopo("up", "-f", file)
	if !regexpMatch(`(?m)^Project three: up done in \S+: \d+ added, \d+ changed, 0 destroyed\.$`, up) {
		t.Errorf("piped up's summary has no duration:\n%s", up)
	}
	out := h.mustSh(fmt.Sprintf("script -qec '%s down -f %s' /dev/null", topoBin, file))
	lines := strings.Split(strings.TrimRight(strings.ReplaceAll(out, "\r", ""), "\n"), "\n")
	if len(lines) < 2 || !regexpMatch(`^Project three: down done in \S+: 0 added, 1 changed, \d+ destroyed\.$`, lines[len(lines)-1]) {
		t.Fatalf("down on a terminal:\n%s", out)
	}
	counter := regexp.MustCompile(`^\[ *(\d+)/(\d+)\] [-~] \S`)
	commands := lines[:len(lines)-1]
	results := 0
	for n, line := range commands {
		m := counter.FindStringSubmatch(line)
		if m == nil || m[1] != fmt.Sprint(n+1) || m[2] != fmt.Sprint(len(commands)) {
			t.Errorf("line %d is not command %d of %d: %q", n+1, n+1, len(commands), line)
		}
		if regexpMatch(` \.\.\. ok \S+$`, line) {
			results++
		}
	}
	// A step per namespace and per UTS namespace, the bridge, two files
	// per container, the resolver's two, one firewall step per table,
	// and forwarding put back with its record removed: each has its
	// result on its own line; a firewall step's lines but the last have
	// none.
	if results != 3+3+1+6+2+2+2 {
		t.Errorf("%d results on the lines, want 19 (one per step):\n%s", results, out)
	}
	for _, c := range []string{"a", "b", "c"} {
		if !regexpMatch(`(?m)^\[ *\d+/\d+\] - ip netns del three-`+c+`  # container `+c+` \.\.\. ok `, out) {
			t.Errorf("the deletion of three-%s has no result on its line:\n%s", c, out)
		}
	}
	assertClean(t, h, "three")
}
