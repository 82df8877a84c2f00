package op

import (
	"net"
	"net/netip"
	"strings"
)

// CNIAdd runs a CNI network's plugin chain (its conflist, Config) ADD for
// a container: ID the container's namespace NS, interface IfName inside
// it; libcni caches the result and the config in Cache, the project's
// (names.Runtime.CNI). Network and Container are the file's names.
//
// IPs and MAC, when set, are asked of the chain (CNI_ARGS IP= and MAC=,
// which host-local, static and the bridge and macvlan plugins honour
// and the others ignore): those of the attachment a DEL removed, for the
// ADD that undoes that DEL, so that a rollback puts the attachment back
// as it was rather than on the IPAM's next address.
type CNIAdd struct {
	Network, Container string
	NS, IfName         string
	Config, Cache      string
	IPs                []netip.Addr
	MAC                net.HardwareAddr
}

// CNIDel runs the chain's DEL for the attachment CNIAdd made, and drops
// its cache entry; the last of a project removes its cache folder.
// Deleting an attachment that is gone succeeds, as CNI's DEL does.
type CNIDel CNIAdd

func (CNIAdd) Name() string { return "cni-add" }
func (CNIDel) Name() string { return "cni-del" }

// Command: `cni add NETWORK CONTAINER`, what cnitool runs
// (`cnitool add NETWORK /run/netns/NS`).
func (o CNIAdd) Command() string { return "cni add " + o.Network + " " + o.Container }

// Command: `cni del NETWORK CONTAINER`.
func (o CNIDel) Command() string { return "cni del " + o.Network + " " + o.Container }

func (o CNIAdd) fill(w *wire) {
	w.Network, w.Container, w.NS, w.Link, w.Content, w.Path = o.Network, o.Container, o.NS, o.IfName, o.Config, o.Cache
	w.MAC = macString(o.MAC)
	for _, a := range o.IPs {
		w.IPs = append(w.IPs, a.String())
	}
}

func (o CNIDel) fill(w *wire) { CNIAdd(o).fill(w) }

// cniFrom reads a CNIAdd; journals from before IPs and MAC have neither.
func cniFrom(w *wire) (CNIAdd, error) {
	o := CNIAdd{Network: w.Network, Container: w.Container, NS: w.NS, IfName: w.Link, Config: w.Content, Cache: w.Path}
	var err error
	if o.MAC, err = parseMAC(w.MAC); err != nil {
		return o, err
	}
	for _, s := range w.IPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return o, err
		}
		o.IPs = append(o.IPs, a)
	}
	return o, nil
}

func init() {
	register("cni-add", func(w *wire) (Operation, error) { return cniFrom(w) })
	register("cni-del", func(w *wire) (Operation, error) { o, err := cniFrom(w); return CNIDel(o), err })
}

// HostsWrite writes a hosts file of /etc/netns/NS/ (Content), with a
// line for each address that the cached results of the container's CNI
// attachments (CNI) give, known only once their chains ran: what
// FileWrite would write of Filled.
type HostsWrite struct {
	NS, Path, Content string
	CNI               []CNIHostsLine
}

// CNIHostsLine is a hosts line of the addresses of a CNI attachment
// (network, container ID and interface, in libcni's cache Cache), for
// Names (space-separated).
type CNIHostsLine struct {
	Cache   string `json:"cache"`
	Network string `json:"network"`
	ID      string `json:"id"`
	IfName  string `json:"ifname"`
	Names   string `json:"names"`
}

func (HostsWrite) Name() string { return "hosts-write" }

// Command: `cat > PATH`, with the attachments' addresses.
func (o HostsWrite) Command() string {
	return "cat > " + o.Path + " (with the addresses of cni " + o.CNI[0].Network + ")"
}

// Filled is the file, each line's addresses given by addrs (CIDR or
// bare); a line whose attachment has none is left out.
func (o HostsWrite) Filled(addrs func(CNIHostsLine) []string) string {
	out := o.Content
	for _, l := range o.CNI {
		for _, a := range addrs(l) {
			if i := strings.IndexByte(a, '/'); i >= 0 {
				a = a[:i]
			}
			out += a + "\t" + l.Names + "\n"
		}
	}
	return out
}

func (o HostsWrite) fill(w *wire) {
	w.NS, w.Path, w.Content, w.Hosts = o.NS, o.Path, o.Content, o.CNI
}

func init() {
	register("hosts-write", func(w *wire) (Operation, error) {
		return HostsWrite{NS: w.NS, Path: w.Path, Content: w.Content, CNI: w.Hosts}, nil
	})
}
