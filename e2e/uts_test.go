package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// utsFile gives web a hostname and a domainname, db the default (its
// name), side web's (network_mode container:web) and out the host's
// (network_mode host). db's healthcheck passes only in its own UTS
// namespace; each command prints its names and reports DONE.
const utsFile = `name: uts
networks:
  lan: {subnet: 10.62.0.0/24}
containers:
  web:
    hostname: %s
    domainname: lab.example
    networks: [lan]
    command: [sh, -c, 'echo "names $$(uname -n) $$(cat /proc/sys/kernel/domainname)"; echo DONE; exec sleep 1000']
  db:
    networks: [lan]
    command: [sh, -c, 'echo "names $$(uname -n)"; echo DONE; exec sleep 1000']
    healthcheck: {test: [CMD-SHELL, 'test "$$(uname -n)" = db'], interval: 100ms, retries: 2}
  side:
    network_mode: container:web
    command: [sh, -c, 'echo "names $$(uname -n)"; echo DONE; exec sleep 1000']
  out:
    network_mode: host
    command: [sh, -c, 'echo "names $$(uname -n)"; echo DONE; exec sleep 1000']
`

// TestContainerHostname: each container's command, healthcheck and topo
// exec see its own hostname and domainname, in a UTS namespace kept at
// /run/topo/PROJECT/uts/NS; container:web shares web's, host the host's;
// a changed hostname is changed in place, the command running on; down
// removes the namespaces' mounts and files.
func TestContainerHostname(t *testing.T) {
	h := newHost(t)
	hostName := strings.TrimSpace(h.mustSh("uname -n"))
	file := writeFile(t, "uts", fmt.Sprintf(utsFile, "www"))
	plan := h.mustTopo("plan", "-f", file)
	for _, want := range []string{
		"+ touch /run/topo/uts/uts/uts-web; unshare --uts=/run/topo/uts/uts/uts-web sh -c \"hostname www; domainname lab.example\"  # container web",
		"+ touch /run/topo/uts/uts/uts-db; unshare --uts=/run/topo/uts/uts/uts-db hostname db  # container db",
		"+ nsenter --uts=/run/topo/uts/uts/uts-web ip netns exec uts-web sh -c",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if strings.Contains(plan, "uts/uts-side") || strings.Contains(plan, "uts/uts-out") {
		t.Errorf("a UTS namespace for a container without a namespace of its own:\n%s", plan)
	}
	h.mustTopo("up", "-f", file, "--wait", "--wait-timeout", "30s")

	for c, want := range map[string]string{"web": "names www lab.example", "db": "names db", "side": "names www", "out": "names " + hostName} {
		if log := h.logOf(file, c); !strings.Contains(log, want+"\n") {
			t.Errorf("%s's command printed %q, want %q", c, log, want)
		}
	}
	if ps := h.psJSON("-f", file); stateOf(ps, "db").Health == nil || stateOf(ps, "db").Health.Status != "healthy" {
		t.Errorf("db's healthcheck (its hostname is db) did not pass: %+v", stateOf(ps, "db"))
	}
	for c, want := range map[string]string{"web": "www lab.example", "db": "db (none)", "side": "www lab.example", "out": hostName} {
		script := "uname -n"
		if c != "out" {
			script = `echo "$(uname -n) $(cat /proc/sys/kernel/domainname)"`
		}
		if got := strings.TrimSpace(h.mustTopo("exec", "-f", file, c, "sh", "-c", script)); got != want {
			t.Errorf("topo exec %s: %q, want %q", c, got, want)
		}
	}
	// The kernel's: a mount of the namespace, which nsenter enters; the
	// host's names untouched.
	for ns, want := range map[string]string{"uts-web": "www", "uts-db": "db"} {
		path := "/run/topo/uts/uts/" + ns
		if got := strings.TrimSpace(h.mustSh("nsenter --uts=" + path + " uname -n")); got != want {
			t.Errorf("nsenter --uts=%s uname -n: %q, want %q", path, got, want)
		}
		if !strings.Contains(h.mustSh("cat /proc/self/mountinfo"), " "+path+" ") {
			t.Errorf("%s is not a mount", path)
		}
	}
	if got := strings.TrimSpace(h.mustSh("uname -n")); got != hostName {
		t.Errorf("the host's hostname is %q now, was %q", got, hostName)
	}

	// A new hostname: changed in place, the command runs on and sees it.
	pid := h.pidOf("uts", "web")
	file2 := writeFile(t, "uts", fmt.Sprintf(utsFile, "www2"))
	plan = h.mustTopo("plan", "-f", file2)
	// (The hosts file and the DNS records name it too.)
	if want := `~ nsenter --uts=/run/topo/uts/uts/uts-web sh -c "hostname www2; domainname lab.example"  # container web`; !strings.Contains(plan, want) || strings.Contains(plan, "kill") || strings.Contains(plan, "unshare") {
		t.Errorf("plan of a new hostname, want %q and no restart:\n%s", want, plan)
	}
	h.mustTopo("up", "-f", file2)
	if got := h.pidOf("uts", "web"); got != pid {
		t.Errorf("web's command restarted (pid %d, was %d)", got, pid)
	}
	if got := strings.TrimSpace(h.mustSh(fmt.Sprintf("nsenter -t %d -u uname -n", pid))); got != "www2" {
		t.Errorf("web's running command sees hostname %q, want www2", got)
	}

	h.mustTopo("down", "-f", file2)
	assertClean(t, h, "uts")
	if mi := h.mustSh("cat /proc/self/mountinfo"); strings.Contains(mi, "/run/topo/uts/") {
		t.Errorf("mounts left:\n%s", mi)
	}
}

// TestUTSNamespaceDrift: a UTS namespace unmounted by hand is drift: plan
// shows it made again and the command that held the old one restarted.
func TestUTSNamespaceDrift(t *testing.T) {
	h := newHost(t)
	file := writeFile(t, "uts", fmt.Sprintf(utsFile, "www"))
	h.mustTopo("up", "-f", file)
	pid := h.pidOf("uts", "db")
	h.mustSh("umount /run/topo/uts/uts/uts-db")
	plan := h.mustTopo("plan", "-f", file)
	for _, want := range []string{"+ touch /run/topo/uts/uts/uts-db;", "kill -TERM -- -" + fmt.Sprint(pid), "+ nsenter --uts=/run/topo/uts/uts/uts-db ip netns exec uts-db"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	h.mustTopo("up", "-f", file)
	if got := strings.TrimSpace(h.mustTopo("exec", "-f", file, "db", "uname", "-n")); got != "db" {
		t.Errorf("topo exec db uname -n: %q", got)
	}
	if p := h.mustTopo("plan", "-f", file); len(stepLines(p)) != 0 {
		t.Errorf("not converged:\n%s", p)
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "uts")
}
