package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/topolab/topo/view"
)

// codesFile: each command waits for its go file (the test makes it),
// then ends as its name says; term ends with 7 on SIGTERM.
const codesFile = `name: codes
networks:
  lan: {subnet: 10.63.0.0/24}
containers:
  fails:
    networks: [lan]
    command: [sh, -c, 'echo started; until [ -e %[1]s/fails ]; do sleep 0.05; done; exit 3']
  done:
    networks: [lan]
    command: [sh, -c, 'echo started; until [ -e %[1]s/done ]; do sleep 0.05; done; exit 0']
  killed: {networks: [lan], command: [sleep, "1000"]}
  term:
    networks: [lan]
    command: [sh, -c, 'trap "exit 7" TERM; echo started; while :; do sleep 0.05; done']
`

// TestExitCodes: ps shows the status a command ended with long after the
// up that started it ended, as its shim recorded it (root's, 0600); a
// finished one-shot (0) stays finished, a failed one is drift; topo stop
// records what the command itself exited with.
func TestExitCodes(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	file := writeFile(t, "codes", fmt.Sprintf(codesFile, dir))
	if out, errOut, code := h.topoEnv([]string{"TOPO_START_WINDOW=200ms"}, "up", "-f", file); code != 0 {
		t.Fatalf("up: %d\n%s\n%s", code, out, errOut)
	}
	exited := func(c string, want int) {
		t.Helper()
		var got view.Container
		h.waitFor(fmt.Sprintf("%s to be exited (%d)", c, want), func() bool {
			got = stateOf(h.psJSON("-f", file), c)
			return got.State == view.StateExited && got.Exit != nil
		})
		if *got.Exit != want {
			t.Errorf("ps %s: exited (%d), want exited (%d)", c, *got.Exit, want)
		}
	}
	h.mustSh(fmt.Sprintf("touch %s %s", filepath.Join(dir, "fails"), filepath.Join(dir, "done")))
	exited("fails", 3)
	exited("done", 0)
	h.mustSh(fmt.Sprintf("kill -KILL %d", h.pidOf("codes", "killed")))
	exited("killed", 137)
	if table := h.mustTopo("ps", "-f", file); !regexpMatch(`(?m)^fails\s+exited \(3\)\s`, table) || !regexpMatch(`(?m)^done\s+exited \(0\)\s`, table) {
		t.Errorf("ps table:\n%s", table)
	}
	if st := h.mustSh("stat -c '%a %u' /run/topo/codes/containers/fails.exit"); st != "600 0\n" {
		t.Errorf("the record of how fails ended: mode and owner %q, want 600 0", st)
	}
	// The one-shot that finished is done; the others are drift.
	plan := h.mustTopo("plan", "-f", file)
	for c, want := range map[string]bool{"fails": true, "done": false, "killed": true, "term": false} {
		if got := strings.Contains(plan, "ip netns exec codes-"+c+" "); got != want {
			t.Errorf("plan starts %s: %v, want %v:\n%s", c, got, want, plan)
		}
	}
	h.mustTopo("stop", "-f", file, "term")
	exited("term", 7)

	h.mustTopo("down", "-f", file)
	assertClean(t, h, "codes")
}

// TestLogsTimestamps: logs --timestamps puts the RFC 3339 time each line
// came before it (after the container's name with several), while logs
// without it prints the log as the command wrote it, byte for byte.
func TestLogsTimestamps(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "stamps", `name: stamps
containers:
  web: {command: [sh, -c, 'echo one; printf "two\nthree\n"; echo DONE; exec sleep 1000']}
  db: {command: [sh, -c, 'echo db-one; echo DONE; exec sleep 1000']}
`)
	before := time.Now().Add(-time.Second)
	h.mustTopo("up", "-f", file)
	h.logOf(file, "web")
	h.logOf(file, "db")
	after := time.Now().Add(time.Second)
	plain := h.mustTopo("logs", "--file", file, "web")
	if raw := h.mustSh("cat /run/topo/stamps/containers/web.log"); plain != raw || plain != "one\ntwo\nthree\nDONE\n" {
		t.Errorf("logs web = %q, the log %q, want both %q", plain, raw, "one\ntwo\nthree\nDONE\n")
	}
	stamp := `(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) `
	check := func(out string, re string, n int) {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != n {
			t.Errorf("%d lines, want %d:\n%s", len(lines), n, out)
		}
		for _, l := range lines {
			m := regexp.MustCompile("^" + re + "$").FindStringSubmatch(l)
			if m == nil {
				t.Errorf("line %q is not %s", l, re)
				continue
			}
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil || at.Before(before) || at.After(after) {
				t.Errorf("line %q: time %v (%v) not between %v and %v", l, at, err, before, after)
			}
		}
	}
	check(h.mustTopo("logs", "--file", file, "--timestamps", "web"), stamp+`(one|two|three|DONE)`, 4)
	check(h.mustTopo("logs", "--file", file, "-t", "--tail", "1", "web"), stamp+`DONE`, 1)
	check(h.mustTopo("logs", "--file", file, "-t"), `(?:web|db) +\| `+stamp+`(one|two|three|db-one|DONE)`, 6)
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "stamps")
}

// completedFile: web starts once migrate's command has ended with
// status 0, and sees what it left.
const completedFile = `name: oneshot
networks:
  lan: {subnet: 10.64.0.0/24}
containers:
  migrate:
    networks: [lan]
    command: [sh, -c, 'echo migrating; sleep 0.5; touch %[1]s/migrated; exit %[2]d']
  web:
    networks: [lan]
    command: [sh, -c, 'test -e %[1]s/migrated && echo saw the migration; echo DONE; exec sleep 1000']
    depends_on: {migrate: {condition: service_completed_successfully}}
`

// TestDependsOnCompletedSuccessfully: a command that depends on another's
// successful completion starts after it ended with 0, longer after its
// start than up watches it; one that ended otherwise fails up with its
// status, and up rolls back.
func TestDependsOnCompletedSuccessfully(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	file := writeFile(t, "oneshot", fmt.Sprintf(completedFile, dir, 0))
	plan := h.mustTopo("plan", "-f", file)
	if want := "until [ -e /run/topo/oneshot/containers/migrate.exit ]"; !strings.Contains(plan, want) {
		t.Errorf("plan lacks the wait %q:\n%s", want, plan)
	}
	if out, errOut, code := h.topoEnv([]string{"TOPO_START_WINDOW=100ms"}, "up", "-f", file); code != 0 {
		t.Fatalf("up: %d\n%s\n%s", code, out, errOut)
	}
	if log := h.logOf(file, "web"); !strings.Contains(log, "saw the migration\n") {
		t.Errorf("web started before migrate completed: %q", log)
	}
	ps := h.psJSON("-f", file)
	if m := stateOf(ps, "migrate"); m.State != view.StateExited || m.Exit == nil || *m.Exit != 0 {
		t.Errorf("ps migrate: %+v, want exited (0)", m)
	}
	if p := h.mustTopo("plan", "-f", file); len(stepLines(p)) != 0 {
		t.Errorf("a completed one-shot is planned again:\n%s", p)
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "oneshot")

	h.mustSh("rm -f " + filepath.Join(dir, "migrated"))
	bad := writeFile(t, "oneshot", fmt.Sprintf(completedFile, dir, 3))
	_, errOut, code := h.topoEnv([]string{"TOPO_START_WINDOW=100ms"}, "up", "-f", bad)
	if want := `container "migrate" exited with status 3`; code != 1 || !strings.Contains(errOut, want) || !strings.Contains(errOut, "rolled back") {
		t.Errorf("up of a failing dependency: exit %d, want 1 with %q and its rollback:\n%s", code, want, errOut)
	}
	assertClean(t, h, "oneshot")
}

// TestShimLeavesTheCommandNothing: the command's stdout and stderr are one
// pipe, its shim's, and it holds none of the shim's own files (its log,
// its index of times, its word to topo).
func TestShimLeavesTheCommandNothing(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "fds", "name: fds\ncontainers:\n  web: {command: [sleep, \"1000\"]}\n")
	h.mustTopo("up", "-f", file)
	pid := h.pidOf("fds", "web")
	var rec struct {
		Shim int `json:"shim"`
	}
	if err := json.Unmarshal([]byte(h.mustSh("cat /run/topo/fds/containers/web.pid")), &rec); err != nil || rec.Shim == 0 {
		t.Fatalf("no shim in the pid file: %v", err)
	}
	targets := func(pid int, fds ...string) []string {
		var out []string
		for _, fd := range fds {
			out = append(out, strings.TrimSpace(h.mustSh(fmt.Sprintf("readlink /proc/%d/fd/%s", pid, fd))))
		}
		return out
	}
	own := targets(rec.Shim, "3", "4", "5")
	if own[0] != "/run/topo/fds/containers/web.log" || own[2] != "/run/topo/fds/containers/web.log.times" {
		t.Errorf("the shim's files %v", own)
	}
	out := targets(pid, "1", "2")
	if out[0] != out[1] || !strings.HasPrefix(out[0], "pipe:") {
		t.Errorf("stdout and stderr %q, want one pipe", out)
	}
	held := h.mustSh(fmt.Sprintf("for f in /proc/%d/fd/*; do readlink $f; done", pid))
	for _, f := range own {
		if strings.Contains(held, f+"\n") {
			t.Errorf("the command holds its shim's %s:\n%s", f, held)
		}
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "fds")
}
