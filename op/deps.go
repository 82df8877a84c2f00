package op

import "github.com/topolab/topo/names"

// Key names something a step provides and another needs: a namespace, a
// link, an address on a link, a file, a project's records or resolver, a
// sysctl. Plans order their steps by them (see package planner).
type Key string

// Keys.
func NetnsKey(ns string) Key         { return Key("ns:" + ns) }
func LinkKey(ns, link string) Key    { return Key("link:" + ns + "/" + link) }
func AddrKey(ns, link string) Key    { return Key("addr:" + ns + "/" + link) }
func FileKey(path string) Key        { return Key("file:" + path) }
func RecordsKey(project string) Key  { return Key("records:" + project) }
func ResolverKey(project string) Key { return Key("resolver:" + project) }
func SysctlKey(ns, key string) Key   { return Key("sysctl:" + ns + "/" + key) }
func ProcKey(pidFile string) Key     { return Key("proc:" + pidFile) }
func CNIKey(network, ns string) Key  { return Key("cni:" + network + "/" + ns) }
func netnsNeed(ns string) []Key      { return keysIf(ns != "", NetnsKey(ns)) }

func keysIf(ok bool, keys ...Key) []Key {
	if ok {
		return keys
	}
	return nil
}

// Provides lists what o makes exist.
func Provides(o Operation) []Key {
	switch o := o.(type) {
	case NetnsAdd:
		return []Key{NetnsKey(o.NS), LinkKey(o.NS, "lo")}
	case BridgeAdd:
		return []Key{LinkKey(o.NS, o.Link)}
	case VxlanAdd:
		return []Key{LinkKey("", o.Link)}
	case VethAdd:
		return []Key{LinkKey(o.NS, o.Link), LinkKey(o.PeerNS, o.Peer)}
	case MacvlanAdd:
		return []Key{LinkKey(o.NS, o.Link)}
	case CNIAdd:
		return []Key{CNIKey(o.Network, o.NS)}
	case AddrAdd:
		return []Key{AddrKey(o.NS, o.Link)}
	case Sysctl:
		return []Key{SysctlKey(o.NS, o.Key)}
	case FileWrite:
		return []Key{FileKey(o.Path)}
	case HostsWrite:
		return []Key{FileKey(o.Path)}
	case RecordsWrite:
		return []Key{RecordsKey(o.Project)}
	case ResolverStart:
		return []Key{ResolverKey(o.Project)}
	case ProcStart:
		return []Key{ProcKey(o.PidFile)}
	case UTSAdd:
		return []Key{UTSKey(o.Path)}
	case Seq:
		var out []Key
		for _, p := range o.Steps {
			out = append(out, Provides(p.Op)...)
		}
		return out
	}
	return nil
}

// Needs lists what must exist for o to run: a namespace before its links,
// a bridge before its ports, a link before its addresses and settings.
func Needs(o Operation) []Key {
	switch o := o.(type) {
	case BridgeAdd:
		return netnsNeed(o.NS)
	case VxlanAdd:
		return []Key{LinkKey("", o.Master)}
	case FdbAdd:
		return []Key{LinkKey("", o.Link)}
	case FdbDel:
		return []Key{LinkKey("", o.Link)}
	case NeighAdd:
		return []Key{LinkKey("", o.Link)}
	case NeighDel:
		return []Key{LinkKey("", o.Link)}
	case VethAdd:
		out := append(netnsNeed(o.NS), netnsNeed(o.PeerNS)...)
		return append(out, keysIf(o.Master != "", LinkKey(o.NS, o.Master))...)
	case MacvlanAdd:
		// The parent is the host's: no step makes it.
		return netnsNeed(o.NS)
	case CNIAdd:
		return netnsNeed(o.NS)
	case CNIDel:
		return []Key{CNIKey(o.Network, o.NS)}
	case LinkDel:
		return []Key{LinkKey(o.NS, o.Link)}
	case LinkSetMAC:
		return []Key{LinkKey(o.NS, o.Link)}
	case LinkSetMTU:
		return []Key{LinkKey(o.NS, o.Link)}
	case Hairpin:
		return []Key{LinkKey(o.NS, o.Link)}
	case LinkUp:
		return []Key{LinkKey(o.NS, o.Link)}
	case LinkDown:
		return []Key{LinkKey(o.NS, o.Link)}
	case QdiscSet:
		return []Key{LinkKey(o.NS, o.Link)}
	case QdiscDel:
		return []Key{LinkKey(o.NS, o.Link)}
	case AddrAdd:
		return []Key{LinkKey(o.NS, o.Link)}
	case RouteAdd:
		return append(netnsNeed(o.NS), keysIf(o.Link != "", LinkKey(o.NS, o.Link))...)
	case Sysctl:
		link, ok := names.SysctlLink(o.Key)
		return append(netnsNeed(o.NS), keysIf(ok && link != "all" && link != "default", LinkKey(o.NS, link))...)
	case SysctlReset:
		return netnsNeed(o.NS)
	case ProcStart:
		return append(netnsNeed(o.NS), keysIf(o.UTS != "", UTSKey(o.UTS))...)
	case UTSSet:
		return []Key{UTSKey(o.Path)}
	case ResolverStart:
		return []Key{RecordsKey(o.Project)}
	case ResolverReload:
		return []Key{RecordsKey(o.Project)}
	case Seq:
		// What the parts need and no earlier part provides.
		have := map[Key]bool{}
		var out []Key
		for _, p := range o.Steps {
			for _, k := range Needs(p.Op) {
				if !have[k] {
					out = append(out, k)
				}
			}
			for _, k := range Provides(p.Op) {
				have[k] = true
			}
		}
		return out
	}
	return nil
}

// Removes lists what o makes cease to exist, of what Provides names.
func Removes(o Operation) []Key {
	switch o := o.(type) {
	case NetnsDel:
		return []Key{NetnsKey(o.NS)}
	case CNIDel:
		return []Key{CNIKey(o.Network, o.NS)}
	case LinkDel:
		return []Key{LinkKey(o.NS, o.Link)}
	case AddrDel:
		return []Key{AddrKey(o.NS, o.Link)}
	case FileDel:
		return []Key{FileKey(o.Path)}
	case RecordsDel:
		return []Key{RecordsKey(o.Project)}
	case ResolverStop:
		return []Key{ResolverKey(o.Project)}
	case UTSDel:
		return []Key{UTSKey(o.Path)}
	}
	return nil
}
