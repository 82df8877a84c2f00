package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/topolab/topo/view"
)

// everydayFile is a project of two containers on one network, each with a
// command that prints a line and then runs on; sleep, the first process of
// its PID namespace, does not catch SIGTERM, so a stop has to kill it.
const everydayFile = `name: %s
networks:
  lan: {subnet: %s}
containers:
  a: {networks: [lan], command: [sh, -c, "echo a started; exec sleep 1000"]}
  b: {networks: [lan], command: [sh, -c, "echo b started; echo b ready; exec sleep 1000"]}
  quiet: {networks: [lan]}
`

// psJSON is topo ps --json of args.
func (h *host) psJSON(args ...string) *view.PS {
	h.t.Helper()
	out := h.mustTopo(append([]string{"ps", "--format", "json"}, args...)...)
	var ps view.PS
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		h.t.Fatalf("ps --format json: %v\n%s", err, out)
	}
	return &ps
}

func stateOf(ps *view.PS, name string) view.Container {
	for _, c := range ps.Containers {
		if c.Name == name {
			return c
		}
	}
	return view.Container{}
}

// TestStopStartRestart: stop ends commands and nothing else (the
// namespace, its address and DNS still answer), ps says exited (137), plan
// shows the start, the log stays; start runs the command again; restart
// runs both anew; ps -q and --filter say who is in which state.
func TestStopStartRestart(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "life", fmt.Sprintf(everydayFile, "life", "10.61.0.0/24"))
	h.mustTopo("up", "-f", file)
	pidA, pidB := h.pidOf("life", "a"), h.pidOf("life", "b")

	out := h.mustTopo("stop", "-f", file, "a")
	if !strings.Contains(out, "container a") || !strings.Contains(out, "Project life: stop done") {
		t.Errorf("stop a:\n%s", out)
	}
	if h.alive(pidA) || !h.alive(pidB) {
		t.Errorf("after stop a: a alive %v (want false), b alive %v (want true)", h.alive(pidA), h.alive(pidB))
	}
	ps := h.psJSON("-f", file)
	if a := stateOf(ps, "a"); a.State != view.StateExited || a.Exit == nil || *a.Exit != 137 || a.PID != 0 {
		t.Errorf("ps a after stop: %+v, want exited (137)", a)
	}
	if table := h.mustTopo("ps", "-f", file); !regexpMatch(`(?m)^a\s+exited \(137\)\s+life-a\s`, table) {
		t.Errorf("ps table:\n%s", table)
	}
	if got := h.mustTopo("ps", "-f", file, "-q", "--filter", "status=exited"); got != "a\n" {
		t.Errorf("ps -q --filter status=exited = %q, want a", got)
	}
	if got := h.mustTopo("ps", "-f", file, "-q", "--filter", "status=running", "--filter", "status=up"); got != "b\nquiet\n" {
		t.Errorf("ps -q --filter running,up = %q, want b, quiet", got)
	}
	if _, errOut, code := h.topo("ps", "-f", file, "--filter", "name=a"); code != 1 || !strings.Contains(errOut, "filters by status only") {
		t.Errorf("ps --filter name=a: exit %d: %s", code, errOut)
	}
	// The network stays: b reaches a by name, and a's namespace holds its
	// address.
	h.mustTopo("exec", "-f", file, "b", "ping", "-c1", "-W2", "a")
	if addr := h.addrOf("life-a", "eth0"); addr != "10.61.0.2/24" {
		t.Errorf("a's address after stop: %q", addr)
	}
	plan, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || !strings.Contains(plan, "ip netns exec life-a sh -c") || strings.Contains(plan, "life-b sh") {
		t.Errorf("plan after stop a: exit %d\n%s", code, plan)
	}
	if log := h.mustTopo("logs", "-f", file, "a"); log != "a started\n" {
		t.Errorf("a's log after stop: %q", log)
	}
	if got := h.mustTopo("stop", "-f", file, "a"); !strings.Contains(got, "nothing to stop") {
		t.Errorf("a second stop: %s", got)
	}
	if _, errOut, code := h.topo("stop", "-f", file, "nosuch"); code != 1 || !strings.Contains(errOut, "no container nosuch") || !strings.Contains(errOut, "a, b, quiet") {
		t.Errorf("stop nosuch: exit %d: %s", code, errOut)
	}
	if _, errOut, code := h.topo("stop", "-f", file, "quiet"); code != 1 || !strings.Contains(errOut, "container quiet has no command") {
		t.Errorf("stop quiet: exit %d: %s", code, errOut)
	}

	h.mustTopo("start", "-f", file)
	ps = h.psJSON("-f", file)
	if a, b := stateOf(ps, "a"), stateOf(ps, "b"); a.State != view.StateRunning || a.Exit != nil || b.PID != pidB {
		t.Errorf("after start: a %+v, b %+v (b must be untouched, pid %d)", a, b, pidB)
	}
	if log := h.mustTopo("logs", "-f", file, "a"); log != "a started\na started\n" {
		t.Errorf("a's log after start: %q", log)
	}
	if _, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after start: exit %d, want no changes", code)
	}
	pidA = h.pidOf("life", "a")

	h.mustTopo("restart", "-f", file)
	if h.alive(pidA) || h.alive(pidB) {
		t.Error("restart left an old process running")
	}
	ps = h.psJSON("-f", file)
	for _, c := range []string{"a", "b"} {
		if s := stateOf(ps, c); s.State != view.StateRunning || s.PID == 0 {
			t.Errorf("after restart %s: %+v", c, s)
		}
	}
	h.mustTopo("exec", "-f", file, "a", "ping", "-c1", "-W2", "b")
	h.mustTopo("down", "-f", file)
}

// TestStartFailureUndoes: start of a command that now dies at once fails
// and stops again the one it had started, leaving both as they were.
func TestStartFailureUndoes(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	flag := filepath.Join(dir, "broken")
	file := writeFile(t, "undo", fmt.Sprintf(`name: undo
containers:
  a: {command: [sleep, "1000"]}
  b: {command: [sh, -c, "test -e %s && exit 5; exec sleep 1000"]}
`, flag))
	h.mustTopo("up", "-f", file)
	h.mustTopo("stop", "-f", file)
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := h.topoEnv([]string{"TOPO_START_WINDOW=3s"}, "start", "-f", file)
	if code != 1 || !strings.Contains(errOut, "with status 5") || !strings.Contains(out, "rolled back") {
		t.Errorf("start: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got := h.mustTopo("ps", "-f", file, "-q", "--filter", "status=exited"); got != "a\nb\n" {
		t.Errorf("after the failed start, exited: %q, want a and b", got)
	}
	os.Remove(flag)
	h.mustTopo("start", "-f", file)
	if got := h.mustTopo("ps", "-f", file, "-q", "--filter", "status=running"); got != "a\nb\n" {
		t.Errorf("running: %q", got)
	}
	h.mustTopo("down", "-f", file)
}

// TestOneShot: a command that ends with status 0 within its first second
// is a one-shot that did its work: up succeeds, ps says exited (0), plan is
// empty and up does nothing; up --wait returns. One that ends with another
// status within that second still fails up, which rolls back.
func TestOneShot(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "oneshot", `name: oneshot
networks:
  lan: {subnet: 10.62.0.0/24}
containers:
  setup: {networks: [lan], command: [sh, -c, "ip -4 -o addr show eth0; echo configured"]}
  web: {networks: [lan], command: [sleep, "1000"]}
`)
	// A window wide enough for sh and ip to end within it on a loaded
	// machine.
	if out, errOut, code := h.topoEnv([]string{"TOPO_START_WINDOW=5s"}, "up", "-f", file, "--wait", "--wait-timeout", "20s"); code != 0 {
		t.Fatalf("up --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	setup := stateOf(h.psJSON("-f", file), "setup")
	if setup.State != view.StateExited || setup.Exit == nil || *setup.Exit != 0 {
		t.Errorf("ps setup: %+v, want exited (0)", setup)
	}
	if log := h.mustTopo("logs", "-f", file, "setup"); !strings.Contains(log, "10.62.0.2/24") || !strings.Contains(log, "configured") {
		t.Errorf("setup's log: %q", log)
	}
	if out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan after a one-shot: exit %d\n%s", code, out)
	}
	if out := h.mustTopo("up", "-f", file); !strings.Contains(out, "nothing to do") {
		t.Errorf("second up:\n%s", out)
	}
	h.mustTopo("down", "-f", file)

	bad := writeFile(t, "oneshot", `name: oneshot
networks:
  lan: {subnet: 10.62.0.0/24}
containers:
  setup: {networks: [lan], command: [sh, -c, "sleep 0.2; exit 2"]}
`)
	before := h.snapshot()
	_, errOut, code := h.topoEnv([]string{"TOPO_START_WINDOW=3s"}, "up", "-f", bad)
	if code != 1 || !strings.Contains(errOut, "with status 2") {
		t.Errorf("up of a command failing in its first second: exit %d\n%s", code, errOut)
	}
	if after := h.snapshot(); after != before {
		t.Errorf("the failed up left changes:\n%s", after)
	}
}

// TestLsAndProjectWithoutFile: ls lists the host's projects with their
// state, containers, networks and files; the read-only commands take -p
// alone, from any folder, reading the project as its last up recorded it.
func TestLsAndProjectWithoutFile(t *testing.T) {
	h := newHost(t)
	f1 := writeFile(t, "lsone", strings.Replace(fmt.Sprintf(everydayFile, "lsone", "10.63.0.0/24"),
		"quiet: {networks: [lan]}", `quiet: {networks: [lan], ports: ["18081:80"]}`, 1))
	f2 := writeFile(t, "lstwo", `name: lstwo
containers:
  solo: {network_mode: none, command: [sleep, "1000"]}
`)
	h.mustTopo("up", "-f", f1)
	h.mustTopo("up", "-f", f2)
	if err := os.Remove(f1); err != nil { // -p must not need it
		t.Fatal(err)
	}

	var ls view.LS
	if err := json.Unmarshal([]byte(h.mustTopo("ls", "--format", "json")), &ls); err != nil {
		t.Fatal(err)
	}
	want := []view.Project{
		{Name: "lsone", State: view.ProjectRunning, ContainersUp: 3, Containers: 3, Networks: []string{"lan"}, Files: []string{f1}},
		{Name: "lstwo", State: view.ProjectRunning, ContainersUp: 1, Containers: 1, Networks: []string{}, Files: []string{f2}},
	}
	if fmt.Sprint(ls.Projects) != fmt.Sprint(want) {
		t.Errorf("ls:\n got %+v\nwant %+v", ls.Projects, want)
	}
	if table := h.mustTopo("ls"); !regexpMatch(`(?m)^lsone\s+running\s+3/3\s+lan\s+`+f1+`$`, table) {
		t.Errorf("ls table:\n%s", table)
	}

	// The read-only commands, with -p alone.
	ps := h.psJSON("-p", "lsone")
	if a := stateOf(ps, "a"); a.State != view.StateRunning || len(a.Networks) != 1 || a.Networks[0].Address != "10.63.0.2/24" {
		t.Errorf("ps -p lsone: %+v", ps)
	}
	if out := h.mustTopo("-p", "lsone", "inspect", "lan"); !strings.Contains(out, "10.63.0.0/24") {
		t.Errorf("inspect -p lsone lan:\n%s", out)
	}
	if out := h.mustTopo("-p", "lsone", "port", "quiet", "80"); out != "0.0.0.0:18081\n" {
		t.Errorf("port -p lsone quiet 80: %q", out)
	}
	if out := h.mustTopo("-p", "lsone", "exec", "b", "ping", "-c1", "-W2", "a"); !strings.Contains(out, "1 received") {
		t.Errorf("exec -p lsone b ping a:\n%s", out)
	}
	if out := h.mustTopo("-p", "lsone", "graph"); !strings.Contains(out, "lan") {
		t.Errorf("graph -p lsone:\n%s", out)
	}
	if out := h.mustTopo("logs", "-p", "lsone", "b"); out != "b started\nb ready\n" {
		t.Errorf("logs -p lsone b: %q", out)
	}
	if _, errOut, code := h.topo("-p", "lsone", "ps", "nosuch"); code != 1 || !strings.Contains(errOut, "no container nosuch in project lsone (as its last up recorded it)") {
		t.Errorf("ps -p lsone nosuch: exit %d: %s", code, errOut)
	}

	// A stopped command makes the project partly up; an interrupted up,
	// interrupted.
	h.mustTopo("-p", "lsone", "stop", "a")
	f3 := writeFile(t, "lsthree", `name: lsthree
networks:
  lan: {subnet: 10.64.0.0/24}
containers:
  x: {networks: [lan]}
`)
	h.topoEnv([]string{"TOPO_CRASH_AT=4"}, "up", "-f", f3)
	got := h.mustTopo("ls")
	for _, re := range []string{`(?m)^lsone\s+partly up\s+3/3\s`, `(?m)^lsthree\s+interrupted\s`, `(?m)^lstwo\s+running\s`} {
		if !regexpMatch(re, got) {
			t.Errorf("ls does not match %s:\n%s", re, got)
		}
	}
	if q := h.mustTopo("ls", "-q"); q != "lsone\nlsthree\nlstwo\n" {
		t.Errorf("ls -q = %q", q)
	}

	for _, p := range []string{"lsone", "lstwo", "lsthree"} {
		h.mustTopo("down", "-p", p)
	}
	if out := h.mustTopo("ls", "-q"); out != "" {
		t.Errorf("ls after every down: %q", out)
	}
	if _, err := os.Stat(filepath.Join("/run/topo", "lsone")); err == nil {
		t.Errorf("down left the record")
	}
}

// TestExecFlags: exec without --, with -e, -w and -u.
func TestExecFlags(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "execf", `name: execf
containers:
  a: {networks: [lan]}
networks:
  lan: {subnet: 10.65.0.0/24}
`)
	h.mustTopo("up", "-f", file)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"a", "ip", "-4", "-o", "addr", "show", "eth0"}, "10.65.0.2/24"},
		{[]string{"a", "--", "ip", "-4", "-o", "addr", "show", "eth0"}, "10.65.0.2/24"},
		{[]string{"-e", "GREETING=hello there", "-e", "PATH=/usr/bin:/bin", "a", "sh", "-c", `echo "$GREETING $PATH"`}, "hello there /usr/bin:/bin\n"},
		{[]string{"-w", "/etc", "a", "pwd"}, "/etc\n"},
		{[]string{"-u", "nobody", "a", "id", "-u"}, "65534\n"},
		{[]string{"-u", "1234:5678", "a", "sh", "-c", "id -u; id -g; echo $HOME"}, "1234\n5678\n/\n"},
	} {
		out := h.mustTopo(append([]string{"exec", "-f", file}, c.args...)...)
		if !strings.Contains(out, c.want) {
			t.Errorf("exec %v = %q, want %q", c.args, out, c.want)
		}
	}
	if _, errOut, code := h.topo("exec", "-f", file, "a"); code != 1 || !strings.Contains(errOut, "exec needs a command") {
		t.Errorf("exec without a command: exit %d: %s", code, errOut)
	}
	if _, errOut, code := h.topo("exec", "-f", file, "-e", "NOEQUALS", "a", "true"); code != 1 || !strings.Contains(errOut, "write KEY=VALUE") {
		t.Errorf("exec -e NOEQUALS: exit %d: %s", code, errOut)
	}
	if _, errOut, code := h.topo("exec", "-f", file, "-u", "no-such-user-topo", "a", "true"); code != 1 || !strings.Contains(errOut, "no-such-user-topo") {
		t.Errorf("exec -u no-such-user-topo: exit %d: %s", code, errOut)
	}
	h.mustTopo("down", "-f", file)
}

// TestLogsSeveral: logs of several containers, or of all, prefix each line
// with its container's name; --tail keeps each log's last lines.
func TestLogsSeveral(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "logsn", fmt.Sprintf(everydayFile, "logsn", "10.66.0.0/24"))
	h.mustTopo("up", "-f", file)
	all := h.mustTopo("logs", "-f", file)
	for _, l := range []string{"a | a started\n", "b | b started\n", "b | b ready\n"} {
		if !strings.Contains(all, l) {
			t.Errorf("logs (all) lacks %q:\n%s", l, all)
		}
	}
	if strings.Count(all, "\n") != 3 {
		t.Errorf("logs (all), want 3 lines:\n%s", all)
	}
	if got := h.mustTopo("logs", "-f", file, "b", "a", "--tail", "1"); got != "b | b ready\na | a started\n" {
		t.Errorf("logs b a --tail 1 = %q", got)
	}
	if got := h.mustTopo("logs", "-f", file, "b", "-n", "0"); got != "" {
		t.Errorf("logs b -n 0 = %q", got)
	}
	// Following all, with --tail 0: only what is written from now on,
	// prefixed; a restart of a writes its first line again.
	logf, err := os.Create(filepath.Join(t.TempDir(), "followed"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	follow := h.Command("sh", "-c", `echo $$; exec "$0" logs --file "$1" --tail 0 -f`, topoBin, file)
	follow.Stdout = logf
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followed := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	h.waitFor("logs -f to start", func() bool { return strings.Contains(followed(), "\n") })
	// Until logs has read where the logs end, a restart's line may come
	// before it: restart until one shows.
	h.waitFor("logs -f to show a's new line", func() bool {
		h.mustTopo("restart", "-f", file, "a")
		return strings.Contains(followed(), "a | a started\n")
	})
	h.mustSh("kill -INT " + strings.SplitN(followed(), "\n", 2)[0])
	if err := follow.Wait(); err != nil {
		t.Errorf("logs -f, interrupted: %v", err)
	}
	for _, l := range strings.Split(strings.TrimSpace(strings.SplitN(followed(), "\n", 2)[1]), "\n") {
		if l != "a | a started" {
			t.Errorf("logs --tail 0 -f printed %q, want only a's new lines:\n%s", l, followed())
		}
	}
	if out := h.mustTopo("logs", "-f", file, "--timestamps", "b"); !regexpMatch(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z b started\n`, out) {
		t.Errorf("logs --timestamps b:\n%s", out)
	}
	if _, errOut, code := h.topo("logs", "-f", file, "quiet"); code != 1 || !strings.Contains(errOut, "has no command") {
		t.Errorf("logs quiet: exit %d: %s", code, errOut)
	}
	h.mustTopo("down", "-f", file)
}

// TestCompletion: the shell completion of the real binary completes
// containers, networks, projects and files.
func TestCompletion(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "compl", fmt.Sprintf(everydayFile, "compl", "10.67.0.0/24"))
	h.mustTopo("up", "-f", file)
	complete := func(args ...string) []string {
		out := h.mustTopo(append([]string{"__complete"}, args...)...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		var words []string
		for _, l := range lines[:len(lines)-1] { // the last is the directive
			w, _, _ := strings.Cut(l, "\t")
			words = append(words, w)
		}
		return append(words, lines[len(lines)-1])
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"exec", "-f", file, ""}, []string{"a", "b", "quiet", ":4"}},
		{[]string{"inspect", "-f", file, ""}, []string{"a", "b", "quiet", "lan", ":4"}},
		{[]string{"stop", "-f", file, "a", ""}, []string{"b", ":4"}},
		{[]string{"-p", "compl", "logs", ""}, []string{"a", "b", ":4"}},
		{[]string{"ps", "-p", ""}, []string{"compl", ":4"}},
		{[]string{"ps", "-f", ""}, []string{"yaml", "yml", ":8"}},
	} {
		if got := complete(c.args...); !slices.Equal(got, c.want) {
			t.Errorf("__complete %v = %q, want %q", c.args, got, c.want)
		}
	}
	if out := h.mustTopo("completion", "bash"); !strings.Contains(out, "__start_topo") {
		t.Errorf("completion bash does not print a script:\n%.200s", out)
	}
	h.mustTopo("down", "-f", file)
}

// TestUpWaitForHealth: up --wait returns once every healthcheck passes
// (the check passes only after the command has made its file, a second
// after it starts), and fails, as Compose's does, when one reports
// unhealthy; the network stays up, as after Compose's failed wait.
func TestUpWaitForHealth(t *testing.T) {
	h := newHost(t)
	ready := filepath.Join(t.TempDir(), "ready")
	file := writeFile(t, "waithealth", `name: waithealth
networks:
  lan: {subnet: 10.63.0.0/24}
containers:
  slow:
    networks: [lan]
    command: [sh, -c, "sleep 1; touch `+ready+`; exec sleep 1000"]
    healthcheck: {test: [CMD, test, -e, `+ready+`], interval: 10s, start_period: 30s, start_interval: 100ms}
`)
	if out, errOut, code := h.topo("up", "-f", file, "--wait", "--wait-timeout", "30s"); code != 0 {
		t.Fatalf("up --wait: exit %d\n%s\n%s", code, out, errOut)
	}
	if c := stateOf(h.psJSON("-f", file), "slow"); c.Health == nil || c.Health.Status != "healthy" {
		t.Errorf("ps right after up --wait: %+v, want healthy", c.Health)
	}
	h.mustTopo("down", "-f", file)

	sick := writeFile(t, "waithealth", `name: waithealth
networks:
  lan: {subnet: 10.63.0.0/24}
containers:
  sick:
    networks: [lan]
    command: [sleep, "1000"]
    healthcheck: {test: [CMD-SHELL, "echo not today; exit 1"], interval: 100ms, retries: 2}
`)
	_, errOut, code := h.topo("up", "-f", sick, "--wait", "--wait-timeout", "30s")
	if code == 0 || !strings.Contains(errOut, "up --wait: container sick: its healthcheck fails: not today") {
		t.Errorf("up --wait of an unhealthy container: exit %d\n%s", code, errOut)
	}
	h.mustTopo("down", "-f", sick)
}
