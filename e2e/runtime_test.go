package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestRuntimeKeysInTopoFiles: the Compose keys of a command, in topo's
// own format: srv's command sees its environment, cli's its folder and
// host-gateway, and starts once srv's healthcheck passes (srv listens
// half a second after it starts). A changed environment restarts srv
// alone.
func TestRuntimeKeysInTopoFiles(t *testing.T) {
	h := newHost(t)
	src := `name: rtk
networks:
  lan: {subnet: 10.72.0.0/24}
containers:
  srv:
    networks: [lan]
    command: [sh, -c, 'sleep 0.5; exec socat TCP-LISTEN:7000,fork,reuseaddr SYSTEM:"echo $$GREETING"']
    environment: {GREETING: hi}
    healthcheck:
      test: [CMD, socat, -u, OPEN:/dev/null, "TCP:127.0.0.1:7000"]
      interval: 100ms
      retries: 30
  cli:
    networks: [lan]
    command: [sh, -c, 'echo "srv says $$(socat -T2 - TCP:srv:7000 </dev/null) in $$(pwd)"; exec sleep infinity']
    working_dir: /etc
    extra_hosts: ["gw=host-gateway"]
    depends_on:
      srv: {condition: service_healthy}
`
	file := writeFile(t, "rtk", src)
	before := h.settledSnapshot()
	h.mustTopo("up", "-f", file)
	h.waitFor("cli's line", func() bool {
		out, _, _ := h.topo("logs", "--file", file, "cli")
		return strings.Contains(out, "srv says")
	})
	if out := h.mustTopo("logs", "--file", file, "cli"); !strings.Contains(out, "srv says hi in /etc") {
		t.Errorf("cli's log: %q, want srv's answer with its environment, and cli's folder", out)
	}
	if out := h.mustSh(in("rtk-cli", "getent hosts gw")); !strings.HasPrefix(out, "10.72.0.1 ") {
		t.Errorf("gw (host-gateway) in cli = %q, want the gateway 10.72.0.1", out)
	}
	srv, cli := h.pidOf("rtk", "srv"), h.pidOf("rtk", "cli")
	os.WriteFile(file, []byte(strings.Replace(src, "GREETING: hi", "GREETING: hello", 1)), 0o644)
	h.mustTopo("up", "-f", file)
	if h.pidOf("rtk", "srv") == srv || h.pidOf("rtk", "cli") != cli || !h.alive(cli) {
		t.Errorf("a changed environment: srv %d -> %d, cli %d -> %d (want srv alone restarted)", srv, h.pidOf("rtk", "srv"), cli, h.pidOf("rtk", "cli"))
	}
	h.waitFor("srv listening again", func() bool { return h.reply("rtk-cli", "srv", 7000) != "" })
	h.wantReply("rtk-cli", "srv", 7000, "hello")
	h.mustTopo("down", "-f", file)
	if after := h.settledSnapshot(); after != before {
		t.Errorf("down left the sandbox changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
