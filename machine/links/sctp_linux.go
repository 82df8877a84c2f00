package links

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/topolab/topo/state"
)

// procSCTPSockets lists the bound SCTP endpoints of /proc/net/sctp/eps,
// one per local address; none when the kernel has no SCTP sockets (no
// sctp module, as on kernels without CONFIG_IP_SCTP).
//
// Equivalent to: `cat /proc/net/sctp/eps`
func procSCTPSockets(file string) ([]hostSocket, error) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseSCTPEndpoints(b), nil
}

// parseSCTPEndpoints reads /proc/net/sctp/eps:
// ENDPT SOCK STY SST HBKT LPORT UID INODE LADDRS...
func parseSCTPEndpoints(b []byte) []hostSocket {
	var out []hostSocket
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 9 {
			continue
		}
		port, perr := strconv.ParseUint(f[5], 10, 16)
		inode, ierr := strconv.ParseUint(f[7], 10, 64)
		if perr != nil || ierr != nil {
			continue
		}
		for _, a := range f[8:] {
			addr, err := netip.ParseAddr(strings.TrimPrefix(a, "*"))
			if err != nil {
				continue
			}
			out = append(out, hostSocket{Socket: state.Socket{Proto: "sctp", Addr: addr.String(), Port: int(port)}, inode: inode})
		}
	}
	return out
}
