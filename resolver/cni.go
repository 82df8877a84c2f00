package resolver

import (
	"net/netip"

	"github.com/topolab/topo/machine/cni"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/resolver/records"
)

// FillCNI gives the members of d on CNI networks the addresses their
// chain's cached result holds, read with read from the CNI cache of the
// project whose runtime folder is dir; a member without a result (its
// chain has not run, or failed) answers nothing.
func FillCNI(d *records.Document, dir string, read func(path string) ([]byte, error)) {
	for i := range d.Networks {
		for j := range d.Networks[i].Members {
			m := &d.Networks[i].Members[j]
			if m.CNI == nil {
				continue
			}
			b, err := read(names.CNIResult(names.CNIIn(dir), m.CNI.Network, m.CNI.ID, m.CNI.IfName))
			if err != nil {
				continue
			}
			for _, a := range cni.ResultAddrs(b, m.CNI.IfName) {
				p, err := netip.ParsePrefix(a)
				switch {
				case err != nil:
				case p.Addr().Is4() && !m.Addr.IsValid():
					m.Addr = p.Addr()
				case p.Addr().Is6() && !m.Addr6.IsValid():
					m.Addr6 = p.Addr()
				}
			}
		}
	}
}
