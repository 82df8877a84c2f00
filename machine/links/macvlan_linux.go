package links

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// macvlanModes are the kernel's values of IFLA_MACVLAN_MODE, by name.
var macvlanModes = map[string]uint32{
	"private":  nl.MACVLAN_MODE_PRIVATE,
	"vepa":     nl.MACVLAN_MODE_VEPA,
	"bridge":   nl.MACVLAN_MODE_BRIDGE,
	"passthru": nl.MACVLAN_MODE_PASSTHRU,
}

// macvlanModeName is the name of a IFLA_MACVLAN_MODE value, "" for one
// topo does not make (source).
func macvlanModeName(v uint32) string {
	for name, m := range macvlanModes {
		if m == v {
			return name
		}
	}
	return ""
}

// MacvlanAdd creates a macvlan link of a host link.
func (k *Kernel) MacvlanAdd(o op.MacvlanAdd) error { return classify(k.addMacvlan(o)) }

// addMacvlan creates a macvlan of the host's link PARENT directly in
// namespace NS (the request is the host's, where the parent is, and
// IFLA_NET_NS_FD puts the new link in NS as it is made: it never appears
// on the host), with its hardware address and MTU; then, there, turns
// IPv6 address generation off (as for a veth's container end: topo's
// networks are IPv4) and marks it and sets it up. If any part after the
// creation fails, the link is deleted again.
//
// Equivalent to: `ip link add link PARENT name LINK address MAC [mtu MTU] netns NS type macvlan mode MODE;
// ip -n NS link set LINK addrgenmode none; ip -n NS link set LINK alias ALIAS up`
func (k *Kernel) addMacvlan(o op.MacvlanAdd) error {
	mode, ok := macvlanModes[o.Mode]
	if !ok {
		return fmt.Errorf("macvlan mode %q: not one of %v", o.Mode, slices.Sorted(maps.Keys(macvlanModes)))
	}
	h, err := k.handle("")
	if err != nil {
		return err
	}
	parent, err := linkIndex(h.sock, o.Parent)
	h.Close()
	if err != nil {
		return fmt.Errorf("parent: %w", err)
	}
	target, err := k.openNetnsOrHost(o.NS)
	if err != nil {
		return err
	}
	defer target.Close()

	req := createRequest(o.Link)
	req.AddData(nl.NewRtAttr(unix.IFLA_LINK, nl.Uint32Attr(uint32(parent))))
	if o.MAC != nil {
		req.AddData(nl.NewRtAttr(unix.IFLA_ADDRESS, []byte(o.MAC)))
	}
	if o.MTU != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(o.MTU))))
	}
	req.AddData(nl.NewRtAttr(unix.IFLA_NET_NS_FD, nl.Uint32Attr(uint32(target))))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("macvlan"))
	info.AddRtAttr(nl.IFLA_INFO_DATA, nil).AddRtAttr(nl.IFLA_MACVLAN_MODE, nl.Uint32Attr(mode))
	req.AddData(info)
	// An error here means no link was made: never delete on it, the name
	// may be a foreign link's.
	if err := k.execute("", req); err != nil {
		return err
	}
	if err := k.finishInNamespace(o.NS, o.Link, o.Mark.String()); err != nil {
		return errors.Join(err, k.execute(o.NS, linkRequest(unix.RTM_DELLINK, o.Link)))
	}
	return nil
}

// finishInNamespace turns IPv6 address generation off on a new link of
// namespace ns, then marks it and sets it up. In a request of its own,
// before the up: the kernel applies AF_SPEC after the flags, and
// generates the link-local address at the up. The two go in one write.
func (k *Kernel) finishInNamespace(ns, link, mark string) error {
	gen := linkRequest(unix.RTM_SETLINK, link)
	af := nl.NewRtAttr(unix.IFLA_AF_SPEC, nil)
	af.AddRtAttr(unix.AF_INET6, nil).AddRtAttr(unix.IFLA_INET6_ADDR_GEN_MODE, []byte{in6AddrGenModeNone})
	gen.AddData(af)
	h, err := k.socket(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	h.links = nil
	errs := executeAll(h.sock, gen, markUpRequest(link, mark))
	if err := errs[0]; err != nil && !errors.Is(err, unix.EAFNOSUPPORT) { // no IPv6 in this kernel
		return fmt.Errorf("turn IPv6 address generation off: %w", err)
	}
	if err := errs[1]; err != nil {
		return fmt.Errorf("set alias and up: %w", err)
	}
	return nil
}

// parentRef stands for the parent of a macvlan in a container's
// namespace, a link of another namespace (the host's) by index, until
// resolveParents names it: the host is read beside the namespaces. A
// name holds no NUL.
func parentRef(index int) string { return "\x00" + strconv.Itoa(index) }

// resolveParents names the host links that the macvlans of snap's
// namespaces are made on.
func resolveParents(snap *state.Snapshot, host []linkInfo) {
	byIndex := make(map[string]string, len(host))
	for _, l := range host {
		byIndex[parentRef(l.Index)] = l.Name
	}
	for i := range snap.Namespaces {
		for j := range snap.Namespaces[i].Links {
			if l := &snap.Namespaces[i].Links[j]; strings.HasPrefix(l.Parent, "\x00") {
				l.Parent = byIndex[l.Parent]
			}
		}
	}
}
