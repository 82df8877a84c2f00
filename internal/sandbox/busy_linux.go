package sandbox

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// busyHost is shell that makes the namespaces it runs in start as a
// sandbox's do on a busy host, before the sandbox's setup: a network
// namespace that forwards, with the other settings a Docker or systemd
// host hands down (see sysctls), and a copy of the host's mounts in which
// /run/netns is a shared mount holding another program's namespace and
// /etc/netns has its files. Run only in namespaces of their own, with /
// made private first, it changes nothing of the host.
const busyHost = `set -e
mount --make-rprivate /
mount -t tmpfs tmpfs /run
mkdir -p /run/netns /etc/netns
mount -t tmpfs tmpfs /etc/netns
ip netns add busy-other
mount --make-shared /run/netns
mkdir -p /etc/netns/busy-other
echo "192.0.2.1 other" > /etc/netns/busy-other/hosts
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 2 > /proc/sys/net/ipv4/conf/all/rp_filter
echo 2 > /proc/sys/net/ipv4/conf/default/rp_filter
echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet
[ ! -e /proc/sys/net/ipv6 ] || echo 1 > /proc/sys/net/ipv6/conf/all/forwarding
`

// RerunOnBusyHost runs this test binary again, with -test.run=pattern, as
// the init of a sandbox whose namespaces start as on a busy host (a host
// that forwards, whose /run/netns is a shared mount with namespaces in
// it): the sandbox's setup must make of it the same clean machine as
// anywhere. env is added to the run's environment. It returns the run's
// verbose output and fails t if the run fails. Like every sandbox, it
// never touches the host; called from inside a sandbox, it nests.
func RerunOnBusyHost(t testing.TB, pattern string, env ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip(needsRoot)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// sh is PID 1 of the new PID namespace, and so is the test binary it
	// becomes: Main takes it for a sandbox's init.
	cmd := exec.Command("sh", "-c", busyHost+`exec "$0" "$@"`, self, "-test.run="+pattern, "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), envInside+"=1"), env...)
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tests %s on a busy host: %v\n%s", pattern, err, out)
	}
	if strings.Contains(string(out), "--- FAIL") || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("tests %s on a busy host:\n%s", pattern, out)
	}
	return string(out)
}
