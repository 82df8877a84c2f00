package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/view"
)

// pidOf reads the pid of a container's command from its pid file.
func (h *host) pidOf(project, container string) int {
	h.t.Helper()
	out := h.mustSh(fmt.Sprintf("cat /run/topo/%s/containers/%s.pid", project, container))
	var rec struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.PID == 0 {
		h.t.Fatalf("pid file of %s/%s: %v: %s", project, container, err, out)
	}
	return rec.PID
}

// alive reports whether pid runs in the sandbox: a zombie is dead (the
// sandbox's init, a plain sleep, does not reap what topo leaves to it).
func (h *host) alive(pid int) bool {
	h.t.Helper()
	out, ok := h.sh(fmt.Sprintf("cat /proc/%d/stat", pid))
	if !ok {
		return false
	}
	i := strings.LastIndexByte(out, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(out[i+1:]), "Z")
}

// netnsOf is the named namespace pid runs in, "" for the sandbox's own.
func (h *host) netnsOf(pid int) string {
	h.t.Helper()
	return strings.TrimSpace(h.mustSh(fmt.Sprintf("ip netns identify %d", pid)))
}

// waitFor polls cond for up to 15 seconds.
func (h *host) waitFor(what string, cond func() bool) {
	h.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	h.t.Fatalf("timed out waiting for %s", what)
}

// procTable lists the live processes of the sandbox, "PID ARGS" sorted,
// without zombies and without the commands that take the listing.
func (h *host) procTable() string {
	h.t.Helper()
	out := h.mustSh("ps -e -o pid=,stat=,args=")
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 3 || strings.HasPrefix(f[1], "Z") || strings.Contains(l, "ps -e -o") {
			continue
		}
		keep = append(keep, f[0]+" "+strings.Join(f[2:], " "))
	}
	sort.Strings(keep)
	return strings.Join(keep, "\n")
}

func (h *host) ps(file string) *view.PS {
	h.t.Helper()
	out := h.mustTopo("ps", "-f", file, "--json")
	var ps view.PS
	if err := json.Unmarshal([]byte(out), &ps); err != nil {
		h.t.Fatalf("ps --json: %v\n%s", err, out)
	}
	return &ps
}

// httpStatus fetches url from inside ns and returns the status code.
func (h *host) httpStatus(ns, url string) string {
	h.t.Helper()
	out, _ := h.sh(fmt.Sprintf("ip netns exec %s curl -s -m 2 -o /dev/null -w '%%{http_code}' %s", ns, url))
	return strings.TrimSpace(out)
}

// TestWebServerCommand runs the shop: web serves HTTP with python3, a peer
// fetches a page, the log shows the request; a killed server is drift that
// up restarts; down leaves no process.
func TestWebServerCommand(t *testing.T) {
	h := newHost(t)
	file := example("shop")
	out := h.mustTopo("up", "-f", file)
	// Piped progress: plain step lines, then the summary.
	if !strings.Contains(out, "+ nsenter --uts=/run/topo/shop/uts/shop-web ip netns exec shop-web python3 -m http.server 80 >>/run/topo/shop/containers/web.log 2>&1 &  # container web\n") ||
		!regexpMatch(`(?m)^Project shop: up done in \S+: \d+ added, \d+ changed, 0 destroyed\.$`, out) {
		t.Errorf("up output:\n%s", out)
	}
	pid := h.pidOf("shop", "web")
	if ns := h.netnsOf(pid); ns != "shop-web" {
		t.Errorf("web's command runs in %q, want shop-web", ns)
	}
	back := ""
	for _, c := range h.ps(file).Containers {
		if c.Name == "web" {
			if c.State != "running" || c.PID != pid {
				t.Errorf("ps: web is %s with pid %d, want running with %d", c.State, c.PID, pid)
			}
			for _, a := range c.Networks {
				if a.Network == "back" {
					back, _, _ = strings.Cut(a.Address, "/")
				}
			}
		}
	}
	if back == "" {
		t.Fatal("ps shows no back address for web")
	}
	// db reaches web's server over the internal network.
	h.waitFor("web to serve HTTP to db", func() bool { return h.httpStatus("shop-db", "http://"+back+"/") == "200" })
	logs := h.mustTopo("logs", "-f", file, "web")
	if !strings.Contains(logs, `"GET / HTTP/1.1" 200`) || !strings.Contains(logs, "172.") {
		t.Errorf("topo logs web:\n%s", logs)
	}
	// logs -f follows: a request made once it has printed the log so far
	// shows up.
	logf, err := os.Create(filepath.Join(t.TempDir(), "followed"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	// Its first line is its pid in the sandbox, to stop it by.
	follow := h.Command("sh", "-c", `echo $$; exec "$0" logs -p shop web -f`, topoBin)
	follow.Stdout = logf
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	followed := func() string { b, _ := os.ReadFile(logf.Name()); return string(b) }
	h.waitFor("logs -f to print the log so far", func() bool { return strings.Contains(followed(), `"GET / HTTP/1.1" 200`) })
	h.mustSh(fmt.Sprintf("ip netns exec shop-db curl -s -m 5 -o /dev/null http://%s/followed", back))
	h.waitFor("logs -f to show a request made while it runs", func() bool { return strings.Contains(followed(), "GET /followed HTTP/1.1") })
	h.mustSh("kill -INT " + strings.SplitN(followed(), "\n", 2)[0])
	if err := follow.Wait(); err != nil {
		t.Errorf("logs -f, interrupted: %v", err)
	}

	// Killed by hand: drift, planned and repaired, in its namespace.
	h.mustSh(fmt.Sprintf("kill -9 %d", pid))
	h.waitFor("web to die", func() bool { return !h.alive(pid) })
	out, _, code := h.topo("plan", "-f", file, "--detailed-exitcode")
	if code != 2 || len(stepLines(out)) != 1 || !strings.Contains(out, "+ nsenter --uts=/run/topo/shop/uts/shop-web ip netns exec shop-web python3 -m http.server 80") {
		t.Errorf("plan after kill: exit %d\n%s", code, out)
	}
	for _, c := range h.ps(file).Containers {
		if c.Name == "web" && (c.State != "exited" || c.PID != 0) {
			t.Errorf("ps after kill: web is %s, pid %d", c.State, c.PID)
		}
	}
	h.mustTopo("up", "-f", file)
	pid2 := h.pidOf("shop", "web")
	if pid2 == pid || !h.alive(pid2) || h.netnsOf(pid2) != "shop-web" {
		t.Errorf("after repair: pid %d (was %d), alive %v", pid2, pid, h.alive(pid2))
	}
	h.waitFor("web to serve again", func() bool { return h.httpStatus("shop-db", "http://"+back+"/") == "200" })

	h.mustTopo("down", "-f", file)
	if h.alive(pid2) {
		t.Errorf("web's process %d runs after down", pid2)
	}
	assertClean(t, h, "shop")
}

func regexpMatch(re, s string) bool {
	return regexp.MustCompile(re).MatchString(s)
}

// TestChangedCommandRestartsOnlyItsProcess: two containers with commands;
// changing one restarts it alone.
func TestChangedCommandRestartsOnlyItsProcess(t *testing.T) {
	h := newHost(t)
	src := `name: cmds
containers:
  a: {command: [sleep, "1000"]}
  b: {command: [sleep, "2000"]}
`
	file := writeFile(t, "cmds", src)
	h.mustTopo("up", "-f", file)
	a, b := h.pidOf("cmds", "a"), h.pidOf("cmds", "b")
	os.WriteFile(file, []byte(strings.Replace(src, `"2000"`, `"3000"`, 1)), 0o644)
	out := h.mustTopo("plan", "-f", file)
	want := []string{
		fmt.Sprintf(`  - kill -TERM -- -%d; rm -f /run/topo/cmds/containers/b.pid  # container b`, b),
		`  + nsenter --uts=/run/topo/cmds/uts/cmds-b ip netns exec cmds-b sleep 3000 >>/run/topo/cmds/containers/b.log 2>&1 &  # container b`,
	}
	if d := cmp.Diff(want, stepLines(out)); d != "" {
		t.Errorf("plan of a changed command (-want +got):\n%s", d)
	}
	h.mustTopo("up", "-f", file)
	b2 := h.pidOf("cmds", "b")
	if h.pidOf("cmds", "a") != a || !h.alive(a) {
		t.Errorf("a was restarted or died")
	}
	if b2 == b || h.alive(b) || !h.alive(b2) {
		t.Errorf("b: old %d alive %v, new %d alive %v", b, h.alive(b), b2, h.alive(b2))
	}
	if args := h.mustSh(fmt.Sprintf("cat /proc/%d/cmdline | tr '\\0' ' '", b2)); !strings.HasSuffix(strings.TrimSpace(args), "sleep 3000") {
		t.Errorf("b runs %q", args)
	}
	h.mustTopo("down", "-f", file)
	for _, pid := range []int{a, b2} {
		if h.alive(pid) {
			t.Errorf("process %d runs after down", pid)
		}
	}
	assertClean(t, h, "cmds")
}

// TestCommandThatCannotStart: a missing program, a file that is not
// executable, a program that exits at once, or within its first second,
// with a failure (one that succeeds is a one-shot: TestOneShot). Each makes up fail, roll back the whole project (another
// command had started), and leave the kernel, the runtime files and the
// process table as they were; an early exit's message carries its status
// and its last lines of output, since the rollback removes its log. The
// start window is widened (TOPO_START_WINDOW) so that a loaded machine
// still sees sh exit within it.
func TestCommandThatCannotStart(t *testing.T) {
	h := newHost(t)
	notExec := filepath.Join(t.TempDir(), "notexec")
	os.WriteFile(notExec, []byte("#!/bin/sh\necho hi\n"), 0o644)
	for _, bad := range []struct{ name, argv, want string }{
		{"missing", `[no-such-program-topo, --flag]`, `"no-such-program-topo": command not found or not executable`},
		{"not-executable", `[` + notExec + `]`, "command not found or not executable"},
		{"fails-at-once", `[sh, -c, "echo starting; echo no config >&2; exit 3"]`, `"sh" exited at once, with status 3, `},
		{"fails-within-a-second", `[sh, -c, "sleep 0.3; exit 4"]`, `"sh" exited at once, with status 4, `},
	} {
		t.Run(bad.name, func(t *testing.T) {
			file := writeFile(t, "badcmd", fmt.Sprintf(`name: badcmd
networks:
  lan: {subnet: 10.3.0.0/24}
containers:
  a: {networks: [lan], command: [sleep, "1000"]}
  b: {networks: [lan], command: %s}
`, bad.argv))
			before, procs := h.snapshot(), h.procTable()
			out, errOut, code := h.topoEnv([]string{"TOPO_START_WINDOW=3s"}, "up", "-f", file)
			if code != 1 || !strings.Contains(errOut, bad.want) || !strings.Contains(errOut, "rolled back") {
				t.Errorf("up: exit %d\nstderr:\n%s", code, errOut)
			}
			lines := map[string]string{"fails-at-once": "    starting\n    no config"}[bad.name]
			if lines != "" && !strings.Contains(errOut, "Its last lines of output:\n"+lines) {
				t.Errorf("up's error does not carry the output:\n%s", errOut)
			}
			// The piped progress names the failed step and each undo.
			if !regexpMatch(`(?m)^Project badcmd: up failed in \S+ at step \d+ of \d+: \+ nsenter --uts=/run/topo/badcmd/uts/badcmd-b ip netns exec badcmd-b `, out) ||
				!strings.Contains(out, "rolled back step") || !strings.Contains(out, "the kernel is as it was") ||
				!strings.Contains(out, "- kill -TERM -- -") {
				t.Errorf("up output:\n%s", out)
			}
			if after := h.snapshot(); after != before {
				t.Errorf("kernel or files changed (-before +after):\n%s", cmp.Diff(before, after))
			}
			if after := h.procTable(); after != procs {
				t.Errorf("process table changed (-before +after):\n%s", cmp.Diff(procs, after))
			}
		})
	}
}
