package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// composeDir is testdata/compose/NAME: Compose projects written the way
// projects write them (their config output is pinned in cmd/topo).
func composeDir(name string) string {
	_, self, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(self), "..", "testdata", "compose", name)
}

// listening waits until something listens on the TCP port in ns.
func (h *host) listening(ns string, port int) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("a listener on %s port %d", ns, port), func() bool {
		out, _ := h.sh(in(ns, fmt.Sprintf("ss -ltnH sport = :%d", port)))
		return strings.TrimSpace(out) != ""
	})
}

// reply connects from ns to host:port (a name the embedded DNS answers,
// or an address) and returns what the server said, "" if nothing.
func (h *host) reply(ns, host string, port int) string {
	h.t.Helper()
	out, _ := h.sh(in(ns, fmt.Sprintf("socat -T2 - TCP:%s:%d,connect-timeout=2 </dev/null 2>/dev/null", host, port)))
	return strings.TrimSpace(out)
}

// wantReply fails the test unless a connection from ns to host:port gets
// want.
func (h *host) wantReply(ns, host string, port int, want string) {
	h.t.Helper()
	if got := h.reply(ns, host, port); got != want {
		h.t.Errorf("from %q to %s:%d: got %q, want %q", ns, host, port, got, want)
	}
}

// addrOf is the address of a namespace's interface, CIDR form.
func (h *host) addrOf(ns, ifname string) string {
	h.t.Helper()
	for _, l := range h.links(ns) {
		if l.Name == ifname {
			if a := l.ipv4(); len(a) == 1 {
				return a[0]
			}
		}
	}
	return ""
}

// TestComposeProjects brings up each project of testdata/compose with the
// real binary, checks its network with real traffic between its services
// (the images' programs replaced by socat where the project needs it,
// through a test.yaml merged over it as a second -f file), then checks
// that down leaves the sandbox as it was.
func TestComposeProjects(t *testing.T) {
	type project struct {
		name string
		// files are the -f files, in dir; none means topo finds them.
		files []string
		args  []string
		check func(h *host, dir string)
	}
	tests := []project{
		{"wordpress", []string{"compose.yaml", "test.yaml"}, nil, func(h *host, dir string) {
			h.listening("wordpress-db", 3306)
			h.listening("wordpress-wordpress", 80)
			h.wantReply("wordpress-wordpress", "db", 3306, "mariadb")
			h.wantReply("", "127.0.0.1", 80, "wordpress")
		}},
		{"three-tier", []string{"compose.yaml", "test.yaml"}, nil, func(h *host, dir string) {
			for ns, port := range map[string]int{"shop-proxy": 80, "shop-app": 8000, "shop-db": 5432} {
				h.listening(ns, port)
			}
			h.listening("shop-proxy", 443)
			h.wantReply("shop-proxy", "api", 8000, "app")
			h.wantReply("shop-proxy", "api.shop.internal", 8000, "app")
			h.wantReply("shop-app", "database", 5432, "postgres")
			h.wantReply("", "127.0.0.1", 8080, "proxy")
			h.wantReply("", "127.0.0.1", 8443, "proxy-tls")
			// The proxy is not on the backend: no name, no way there.
			if out, ok := h.sh(in("shop-proxy", "getent hosts db")); ok {
				t.Errorf("proxy resolves db: %s", out)
			}
			db := strings.Split(h.addrOf("shop-db", "eth0"), "/")[0]
			h.wantReply("shop-proxy", db, 5432, "")
			// The backend is internal: no default route.
			if out := h.mustSh("ip -n shop-db route"); strings.Contains(out, "default") {
				t.Errorf("db on an internal network has a default route:\n%s", out)
			}
		}},
		{"static-ips", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			want := map[[2]string]string{
				{"static-ips-router", "eth0"}: "10.77.1.254/24", {"static-ips-router", "eth1"}: "10.77.2.254/24",
				{"static-ips-client", "eth0"}: "10.77.1.10/24",
				// ip_range starts at .128, which aux_addresses reserves.
				{"static-ips-server", "eth0"}: "10.77.2.129/24",
			}
			for k, addr := range want {
				if got := h.addrOf(k[0], k[1]); got != addr {
					t.Errorf("%s %s has %q, want %s", k[0], k[1], got, addr)
				}
			}
			h.mustSh(in("static-ips-client", "ping -c1 -W2 10.77.1.254") + " && " + in("static-ips-server", "ping -c1 -W2 10.77.2.254"))
			if out := h.mustSh("ip -o addr"); !strings.Contains(out, "10.77.1.1/24") || !strings.Contains(out, "10.77.2.1/24") {
				t.Errorf("the bridges do not hold the gateways 10.77.1.1 and 10.77.2.1:\n%s", out)
			}
		}},
		{"port-ranges", []string{"compose.yaml", "test.yaml"}, nil, func(h *host, dir string) {
			h.listening("port-ranges-game", 80)
			h.listening("port-ranges-game", 8080)
			// 9000 was taken before up (below): the range gives 9001.
			if out := h.mustTopo("port", "-f", filepath.Join(dir, "compose.yaml"), "game", "80"); strings.TrimSpace(out) != "0.0.0.0:9001" {
				t.Errorf("topo port game 80 = %q, want 0.0.0.0:9001", out)
			}
			h.wantReply("", "127.0.0.1", 9001, "game-80")
			h.wantReply("", "127.0.0.1", 9000, "other")
			h.wantReply("", "127.0.0.1", 7000, "game-8080")
			if out := h.mustTopo("port", "-f", filepath.Join(dir, "compose.yaml"), "game", "27016/udp"); strings.TrimSpace(out) != "0.0.0.0:27016" {
				t.Errorf("topo port game 27016/udp = %q", out)
			}
		}},
		{"sidecar", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			h.listening("sidecar-app", 8081)
			h.listening("sidecar-app", 9901)
			h.wantReply("sidecar-client", "app", 8081, "app")
			h.wantReply("sidecar-client", "app", 9901, "envoy")
			h.wantReply("", "127.0.0.1", 9901, "envoy")
			if out := h.mustSh("ip netns list"); strings.Contains(out, "sidecar-envoy") {
				t.Errorf("envoy has a namespace of its own:\n%s", out)
			}
		}},
		{"anchors", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			h.listening("anchors-api", 8090) // API_PORT from .env
			h.listening("anchors-worker", 9000)
			h.wantReply("anchors-worker", "api", 8090, "api")
			h.wantReply("", "127.0.0.1", 8088, "api")
			if out := h.mustTopo("ps", "-f", filepath.Join(dir, "compose.yaml")); !strings.Contains(out, "SYSTEM:echo worker costs $5") {
				t.Errorf("$$ did not become $ in the worker's command:\n%s", out)
			}
		}},
		{"profiles", []string{"compose.yaml"}, []string{"--profile", "debug"}, func(h *host, dir string) {
			h.listening("profiles-web", 80)
			h.listening("profiles-metrics", 9090) // COMPOSE_PROFILES in .env
			h.wantReply("profiles-metrics", "web", 80, "web")
			ps := h.ps(filepath.Join(dir, "compose.yaml"))
			if len(ps.Containers) != 2 {
				t.Errorf("ps without --profile debug lists %d containers, want web and metrics", len(ps.Containers))
			}
			pid := h.pidOf("profiles", "debug")
			if ns := h.netnsOf(pid); ns != "profiles-web" {
				t.Errorf("debug runs in %q, want web's namespace", ns)
			}
		}},
		{"include", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			h.listening("include-db", 5432)
			h.listening("include-cache", 6379)
			h.listening("include-app", 8000)
			h.wantReply("include-app", "db", 5432, "postgres-16") // db/.env
			h.wantReply("include-app", "cache", 6379, "redis")
			if a := h.addrOf("include-db", "eth0"); !strings.HasPrefix(a, "10.88.0.") {
				t.Errorf("db has %q, want an address of 10.88.0.0/24", a)
			}
			if out, ok := h.sh(in("include-cache", "getent hosts db")); ok {
				t.Errorf("cache, not on data, resolves db: %s", out)
			}
		}},
		{"override", nil, nil, func(h *host, dir string) {
			h.listening("override-web", 80)
			h.listening("override-web", 443)
			h.listening("override-admin", 9000)
			h.wantReply("", "127.0.0.1", 8080, "web")
			h.wantReply("", "127.0.0.1", 8443, "web-tls")
			h.wantReply("override-admin", "www", 80, "web")
			h.wantReply("override-admin", "web.local", 80, "web")
			// ports: !reset [] in the override unpublished admin's.
			h.wantReply("", "127.0.0.1", 9000, "")
		}},
		{"priorities", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			h.listening("priorities-peer", 7000)
			for ifname, prefix := range map[string]string{"eth0": "10.91.0.", "eth1": "10.91.1.", "eth2": "10.91.2."} {
				if a := h.addrOf("priorities-gateway", ifname); !strings.HasPrefix(a, prefix) {
					t.Errorf("gateway %s has %q, want an address of %s0/24", ifname, a, prefix)
				}
			}
			if out := h.mustSh("ip -n priorities-gateway route show default"); !strings.Contains(out, "via 10.91.1.1 dev eth1") {
				t.Errorf("default route %q, want via uplink's gateway 10.91.1.1", out)
			}
			h.wantReply("priorities-gateway", "peer", 7000, "peer")
		}},
		{"names", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			h.listening("names-api_v2", 8000)
			h.listening("names-Web.Front", 80)
			h.wantReply("names-Web.Front", "api_v2", 8000, "api_v2")
			h.wantReply("names-api_v2", "web.front", 80, "web")
			h.wantReply("names-api_v2", "web_frontend", 80, "web") // container_name
			if out, ok := h.sh(in("names-Web.Front", "getent hosts api_v2.back_end")); ok {
				t.Errorf("Web.Front, not on back_end, resolves api_v2.back_end: %s", out)
			}
		}},
		{"extends", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			h.listening("extends-api", 8000)
			h.listening("extends-worker", 8001)
			h.wantReply("extends-api", "worker", 8001, "worker")
			h.wantReply("extends-worker", "api", 8000, "api")
			// worker extends api: both hold api's aliases, with base's.
			for _, alias := range []string{"api-internal", "svc"} {
				if out := h.mustSh(in("extends-worker", "dig +short @127.0.0.11 "+alias)); len(strings.Fields(out)) != 2 {
					t.Errorf("%s has %q, want the addresses of api and worker", alias, out)
				}
			}
		}},
		{"runtime", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			file := filepath.Join(dir, "compose.yaml")
			h.waitFor("app's environment in its log", func() bool {
				out, _, _ := h.topo("logs", "--file", file, "app")
				return strings.Contains(out, "cwd=")
			})
			log := h.mustTopo("logs", "--file", file, "app")
			for _, want := range []string{"cwd=/tmp\n", "GREETING=hello\n", "FROM_FILE=from-env-file\n", "FROM_SHELL=from-dot-env\n", "PATH=/usr/local/sbin:"} {
				if !strings.Contains(log, want) {
					t.Errorf("app's log lacks %q:\n%s", want, log)
				}
			}
			// The embedded resolver answers the project's names, and
			// forwards the others to app's dns:, upstream's dnsmasq.
			h.waitFor("dnsmasq on 10.71.0.53:53", func() bool {
				out, _ := h.sh(in("runtime-upstream", "ss -lunH src 10.71.0.53:53"))
				return strings.TrimSpace(out) != ""
			})
			if out := strings.TrimSpace(h.mustSh(in("runtime-app", "dig +short +tries=1 +time=3 only.upstream.test"))); out != "10.99.0.7" {
				t.Errorf("only.upstream.test from app = %q, want 10.99.0.7 from its dns upstream", out)
			}
			if out := h.mustTopo("logs", "--file", file, "upstream"); !strings.Contains(out, "query[A] only.upstream.test from 10.71.0.1") {
				t.Errorf("upstream's dnsmasq did not log the query from the host's side of the bridge:\n%s", out)
			}
			if out := strings.TrimSpace(h.mustSh(in("runtime-app", "dig +short upstream"))); out != "10.71.0.53" {
				t.Errorf("upstream from app = %q, want 10.71.0.53 from the embedded resolver", out)
			}
			rc := h.mustSh(in("runtime-app", "cat /etc/resolv.conf"))
			if !strings.Contains(rc, "nameserver 127.0.0.11\nsearch lab.example\noptions ndots:2\n") {
				t.Errorf("app's resolv.conf:\n%s", rc)
			}
			for name, want := range map[string]string{"db.example": "10.9.9.9", "host.topo.internal": "10.71.0.1", "app.lab.example": "10.71.0.2"} {
				if out := h.mustSh(in("runtime-app", "getent hosts "+name)); !strings.HasPrefix(out, want+" ") {
					t.Errorf("getent hosts %s in app = %q, want %s", name, out, want)
				}
			}
			if out := h.mustSh("ip -n runtime-app link show eth0"); !strings.Contains(out, "mtu 1400") {
				t.Errorf("app's eth0 has not the driver option's MTU:\n%s", out)
			}
		}},
		{"health", []string{"compose.yaml"}, nil, func(h *host, dir string) {
			file := filepath.Join(dir, "compose.yaml")
			// web started once db was healthy: db listened by then.
			h.waitFor("web's first line", func() bool {
				out, _, _ := h.topo("logs", "--file", file, "web")
				return strings.Contains(out, "db says")
			})
			if out := h.mustTopo("logs", "--file", file, "web"); !strings.Contains(out, "db says postgres") {
				t.Errorf("web started before db answered:\n%s", out)
			}
			ps := h.ps(file)
			for _, c := range ps.Containers {
				if c.Name == "db" && (c.Health == nil || c.Health.Status != "healthy") {
					t.Errorf("ps --json: db's health is %+v, want healthy", c.Health)
				}
				if c.Name == "web" && c.Health != nil {
					t.Errorf("ps --json: web, without a healthcheck, has health %+v", c.Health)
				}
			}
			if out := h.mustTopo("ps", "-f", file); !strings.Contains(out, "running (healthy)") {
				t.Errorf("ps does not show db healthy:\n%s", out)
			}
			if out := h.mustTopo("inspect", "-f", file, "db"); !strings.Contains(out, "health        healthy, 0 failing in a row") {
				t.Errorf("inspect db:\n%s", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t)
			dir := composeDir(tt.name)
			if tt.name == "port-ranges" {
				busy := h.Command("socat", "TCP-LISTEN:9000,fork,reuseaddr", "SYSTEM:echo other")
				if err := busy.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = busy.Process.Kill(); _ = busy.Wait() })
				h.listening("", 9000)
			}
			before := h.settledSnapshot()
			var fargs []string
			for _, f := range tt.files {
				fargs = append(fargs, "-f", filepath.Join(dir, f))
			}
			run := func(verb string) {
				t.Helper()
				args := append(append([]string{verb}, fargs...), tt.args...)
				if tt.files == nil {
					// Found as Compose finds them: compose.yaml and the
					// override beside it.
					out, ok := h.sh("cd " + dir + " && " + topoBin + " " + strings.Join(args, " ") + " 2>&1")
					if !ok {
						t.Fatalf("topo %s in %s:\n%s", verb, dir, out)
					}
					return
				}
				h.mustTopo(args...)
			}
			run("up")
			tt.check(h, dir)
			run("down")
			if after := h.settledSnapshot(); after != before {
				t.Errorf("down left the sandbox changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// TestComposeInputsCheckedBeforeTheKernel: a Compose project is refused
// what a topo file is, at the Compose files' FILE:LINE:COL, the second -f
// file's problems in it: reserved subnets (an ipam subnet in the loopback
// block, one in link-local) and NUL bytes in a command and an entrypoint.
// up changes nothing.
func TestComposeInputsCheckedBeforeTheKernel(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "compose.override.yaml")
	files := map[string]string{a: `services:
  web:
    image: nginx
    networks: [lo]
    command: ["sh", "-c", "echo a\0b"]
networks:
  lo:
    ipam:
      config:
        - subnet: 127.42.0.0/16
`,
		b: `services:
  db:
    networks: [ll]
    entrypoint: "tini \0"
networks:
  ll:
    ipam:
      config:
        - subnet: 169.254.0.0/16
`,
	}
	for p, src := range files {
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, code := h.topo("validate", "-f", a, "-f", b)
	if code != 1 {
		t.Errorf("validate: exit %d", code)
	}
	for _, want := range []string{
		a + `:5:27: service "web": command argument 2 ("echo a\x00b") holds a NUL byte`,
		a + `:10:19: network "lo": subnet 127.42.0.0/16 is in the loopback block 127.0.0.0/8`,
		b + `:4:17: service "db": entrypoint argument 1 ("\x00") holds a NUL byte`,
		b + `:9:19: network "ll": subnet 169.254.0.0/16 is in the link-local block 169.254.0.0/16`,
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("validate's stderr lacks %q:\n%s", want, errOut)
		}
	}
	before := h.snapshot()
	if _, errOut, code := h.topo("up", "-f", a, "-f", b); code != 1 || !strings.Contains(errOut, a+":10:19:") {
		t.Errorf("up: exit %d, stderr:\n%s", code, errOut)
	}
	if d := cmp.Diff(before, h.snapshot()); d != "" {
		t.Errorf("up changed the kernel (-before +after):\n%s", d)
	}
}

// TestComposeUnhealthyDependency: a dependency whose healthcheck fails
// fails up at the start of the command that waits for it, naming the
// container and the check's output, and up rolls back.
func TestComposeUnhealthyDependency(t *testing.T) {
	h := newHost(t)
	dir := composeDir("health")
	before := h.settledSnapshot()
	_, stderr, code := h.topo("up", "-f", filepath.Join(dir, "compose.yaml"), "-f", filepath.Join(dir, "unhealthy.yaml"))
	if code == 0 {
		t.Fatal("up succeeded with an unhealthy dependency")
	}
	for _, want := range []string{`container "db" is unhealthy: its healthcheck failed 2 times in a row; the last run exited with status 1: no database here`, "ip netns exec health-web", "the kernel is as it was"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("up's error lacks %q:\n%s", want, stderr)
		}
	}
	if after := h.settledSnapshot(); after != before {
		t.Errorf("the failed up left the sandbox changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
