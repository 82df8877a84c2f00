package links

import (
	"path/filepath"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/topolab/topo/state"
)

// it: one socket per local address, with its inode for its owner.
func TestSCTPEndpoints(t *testing.T) {
	eps := []byte(` ENDPT     SOCK   STY SST HBKT LPORT   UID INODE LADDRS
ffff8881 ffff8882 2   10  11   38412    0 4242 10.0.0.5 192.168.1.2
ffff8883 ffff8884 1   10  12   3868     0 4343 *0.0.0.0
`)
	want := []hostSocket{
		{Socket: state.Socket{Proto: "sctp", Addr: "10.0.0.5", Port: 38412}, inode: 4242},
		{Socket: state.Socket{Proto: "sctp", Addr: "192.168.1.2", Port: 38412}, inode: 4242},
		{Socket: state.Socket{Proto: "sctp", Addr: "0.0.0.0", Port: 3868}, inode: 4343},
	}
	if diff := gocmp.Diff(want, parseSCTPEndpoints(eps), gocmp.AllowUnexported(hostSocket{})); diff != "" {
		t.Errorf("parseSCTPEndpoints (-want +got):\n%s", diff)
	}
	if socks, err := procSCTPSockets(filepath.Join(t.TempDir(), "none")); err != nil || socks != nil {
		t.Errorf("no eps file: %v, %v; want none, no error", socks, err)
	}
}
