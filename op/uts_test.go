package op_test

import (
	"testing"

	"github.com/topolab/topo/op"
)

// TestUTSCommands pins what the UTS namespace's steps print, and a
// command that runs in one.
func TestUTSCommands(t *testing.T) {
	for _, c := range []struct {
		op   op.Operation
		want string
	}{
		{op.UTSAdd{Path: "/run/topo/p/uts/p-web", Hostname: "web"}, "touch /run/topo/p/uts/p-web; unshare --uts=/run/topo/p/uts/p-web hostname web"},
		{op.UTSAdd{Path: "/run/topo/p/uts/p-web", Hostname: "web", Domainname: "lab.example"}, `touch /run/topo/p/uts/p-web; unshare --uts=/run/topo/p/uts/p-web sh -c "hostname web; domainname lab.example"`},
		{op.UTSSet{Path: "/run/topo/p/uts/p-web", Hostname: "www"}, `nsenter --uts=/run/topo/p/uts/p-web sh -c "hostname www; domainname '(none)'"`},
		{op.UTSDel{Path: "/run/topo/p/uts/p-web"}, "umount /run/topo/p/uts/p-web; rm /run/topo/p/uts/p-web"},
		{op.ProcStart{NS: "p-web", UTS: "/run/topo/p/uts/p-web", Argv: []string{"hostname"}, Log: "/l"}, "nsenter --uts=/run/topo/p/uts/p-web ip netns exec p-web hostname >>/l 2>&1 &"},
	} {
		if got := c.op.Command(); got != c.want {
			t.Errorf("%s: %q, want %q", c.op.Name(), got, c.want)
		}
	}
}
