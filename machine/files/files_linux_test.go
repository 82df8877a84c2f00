package files

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestHostNameservers: the IPv4 nameservers of a resolv.conf, in order.
func TestHostNameservers(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(conf, []byte("# a comment\nsearch example.org\nnameserver 172.17.0.53\nnameserver fe80::1%eth0\nnameserver ::ffff:192.0.2.1\noptions ndots:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"172.17.0.53", "192.0.2.1"}, nameservers(conf)); d != "" {
		t.Errorf("nameservers (-want +got):\n%s", d)
	}
	if got := nameservers(filepath.Join(t.TempDir(), "none")); got != nil {
		t.Errorf("a missing file names %v", got)
	}
}
