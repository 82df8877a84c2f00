package e2e

import (
	"strings"
	"testing"
)

// TestPortSaysWhatIsTrue: topo port of a container that shares another's
// namespace prints that one's publishes and says whose they are; of a
// name the file lacks, that there is no such container, with those there
// are; of a host-mode container, that nothing is published for it; of one
// that is down, that it is down, with those that are up. The publish it
// prints carries traffic.
func TestPortSaysWhatIsTrue(t *testing.T) {
	need(t, "socat", "ss")
	h := newHost(t)
	file := writeFile(t, "ports", `name: ports
networks:
  lan: {subnet: 10.67.0.0/24}
containers:
  web:
    networks: [lan]
    ports: ["8080:80"]
  probe:
    network_mode: container:web
  onhost:
    network_mode: host
`)
	// Before up: not up, and nothing of the project is.
	if _, errOut, code := h.topo("port", "-f", file, "probe"); code != 1 ||
		!strings.Contains(errOut, "container probe of project ports is not up (it shares web's namespace): no namespace ports-web (none of the project's containers is up); run topo up first") {
		t.Errorf("port probe before up: exit %d\n%s", code, errOut)
	}
	h.mustTopo("up", "-f", file)

	out, errOut, code := h.topo("port", "-f", file, "probe")
	if code != 0 || out != "80/tcp -> 0.0.0.0:8080\n" || !strings.Contains(errOut, "container probe shares web's network namespace (network_mode: container:web): these are web's publishes") {
		t.Errorf("port probe: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if out := h.mustTopo("port", "-f", file, "probe", "80"); out != "0.0.0.0:8080\n" {
		t.Errorf("port probe 80 = %q", out)
	}
	if _, errOut, code := h.topo("port", "-f", file, "probe", "81"); code != 1 || !strings.Contains(errOut, "container web publishes no port 81/tcp") {
		t.Errorf("port probe 81: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := h.topo("port", "-f", file, "nosuch"); code != 1 || !strings.Contains(errOut, "no container nosuch in "+file+"; its containers are: web, probe, onhost") {
		t.Errorf("port nosuch: exit %d\n%s", code, errOut)
	}
	if _, errOut, code := h.topo("port", "-f", file, "onhost"); code != 1 || !strings.Contains(errOut, "container onhost uses the host's network (network_mode: host): nothing is published for it") {
		t.Errorf("port onhost: exit %d\n%s", code, errOut)
	}
	// Without the file, topo reads the project as its last up recorded
	// it; without that record (a project of an earlier topo) it cannot
	// tell a missing container from a stopped one: it names those that
	// are up.
	if _, errOut, code := h.topo("port", "-p", "ports", "nosuch"); code != 1 || !strings.Contains(errOut, "no container nosuch in project ports (as its last up recorded it); its containers are: web, probe, onhost") {
		t.Errorf("port -p ports nosuch: exit %d\n%s", code, errOut)
	}
	h.mustSh("rm /run/topo/ports/source.json /run/topo/ports/config.yaml")
	if _, errOut, code := h.topo("port", "-p", "ports", "nosuch"); code != 1 || !strings.Contains(errOut, "no namespace ports-nosuch (up now: web)") {
		t.Errorf("port -p ports nosuch, without the record: exit %d\n%s", code, errOut)
	}
	// exec follows the same rules.
	if _, errOut, code := h.topo("exec", "-f", file, "nosuch", "--", "true"); code != 1 || !strings.Contains(errOut, "no container nosuch in "+file) {
		t.Errorf("exec nosuch: exit %d\n%s", code, errOut)
	}

	// What port printed is where web answers.
	h.serve("ports-web", 80, "tcp", "socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hello-from-web")
	if got, ok := h.tcpReach("", "127.0.0.1", 8080, true); !ok || got != "hello-from-web" {
		t.Errorf("127.0.0.1:8080, printed by port probe: %q", got)
	}
	h.mustTopo("down", "-f", file)
	assertClean(t, h, "ports")
}
