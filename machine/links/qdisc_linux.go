package links

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	topons "github.com/topolab/topo/machine/netns"
	"github.com/topolab/topo/machine/nlattr"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/op"
	"github.com/topolab/topo/state"
)

// topoRouteProto is names.RouteProto, for code where a map called names
// hides the package.
const topoRouteProto = names.RouteProto

// setMACs sets the MAC of each of out (a container's namespace's links,
// by name) that is an end of a link or an endpoint's container end:
// their hardware addresses are the file's to choose.
func setMACs(links []linkInfo, out []state.Link) {
	macs := make(map[string][6]byte, len(links))
	for _, l := range links {
		if m, ok := names.ParseMark(l.Alias); ok && (m.Kind == names.KindLink || m.Kind == names.KindEndpoint) && l.MAC != ([6]byte{}) {
			macs[l.Name] = l.MAC
		}
	}
	for i := range out {
		if mac, ok := macs[out[i].Name]; ok {
			out[i].MAC = net.HardwareAddr(mac[:]).String()
		}
	}
}

// Link impairment is a root qdisc: tbf for a rate, netem for the rest.
// Both are set through the library's requests, and read back by a raw
// dump of the namespace's qdiscs, one request whatever the number of
// links, as the other dumps of an observation.

// QdiscSet makes the impairment the link's root qdisc.
//
// Equivalent to: `tc [-n NS] qdisc replace dev LINK root tbf|netem ...`
func (k *Kernel) QdiscSet(o op.QdiscSet) error { return classify(k.setQdisc(o)) }

// QdiscDel removes the link's root qdisc; none there, or no link, is
// success.
//
// Equivalent to: `tc [-n NS] qdisc del dev LINK root`
func (k *Kernel) QdiscDel(o op.QdiscDel) error { return classify(k.deleteQdisc(o)) }

func (k *Kernel) setQdisc(o op.QdiscSet) error {
	h, err := k.handle(o.NS)
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := linkByName(h.Handle, o.Link)
	if err != nil {
		return err
	}
	return h.QdiscReplace(qdiscOf(l.Attrs().Index, o.Imp))
}

// qdiscOf is the library's qdisc for an impairment of the link with
// index ifindex.
func qdiscOf(ifindex int, i op.Impairment) netlink.Qdisc {
	attrs := netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}
	bytesPerSec := i.Rate / 8
	if i.Kind() == "tbf" {
		return &netlink.Tbf{QdiscAttrs: attrs, Rate: bytesPerSec, Limit: op.TBFLimit(i.Rate),
			Buffer: netlink.Xmittime(bytesPerSec, op.TBFBurst(i.Rate))}
	}
	return netlink.NewNetem(attrs, netlink.NetemQdiscAttrs{
		Latency: uint32(i.Delay / time.Microsecond), Jitter: uint32(i.Jitter / time.Microsecond),
		Loss: float32(i.Loss), Duplicate: float32(i.Duplicate), CorruptProb: float32(i.Corrupt),
		ReorderProb: float32(i.Reorder), Rate64: bytesPerSec,
	})
}

func (k *Kernel) deleteQdisc(o op.QdiscDel) error {
	h, err := k.handle(o.NS)
	if errors.Is(err, os.ErrNotExist) || machine.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer h.Close()
	l, err := linkByName(h.Handle, o.Link)
	if machine.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	q := &netlink.GenericQdisc{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Parent: netlink.HANDLE_ROOT}}
	// ENOENT: no root qdisc of its own (the default's cannot be deleted).
	if err := h.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	return nil
}

// Netlink's qdisc attributes (linux/pkt_sched.h, rtnetlink.h).
const (
	tcaKind          = 1
	tcaOptions       = 2
	tcaTbfParms      = 1
	tcaTbfRate64     = 4
	tcaNetemReorder  = 3
	tcaNetemCorrupt  = 4
	tcaNetemRate     = 6
	tcaNetemRate64   = 8
	tcaNetemLatency  = 10
	tcaNetemJitter   = 11
	sizeofTcMsg      = 20
	sizeofNetemQopt  = 24
	sizeofTbfQopt    = 36
	tbfRateOffset    = 8 // of tc_ratespec's rate in tc_tbf_qopt
	netemLossOffset  = 8
	netemDupOffset   = 16
	netemRateSize    = 16
	netemProbSize    = 8
	percentPrecision = 1e4
)

// readQdiscs sets the Qdisc of each of out (the namespace's links, by
// name) whose root qdisc is a tbf or a netem.
//
// Equivalent to: `tc [-n NS] qdisc show`
func readQdiscs(h *nsHandle, links []linkInfo, out []state.Link) error {
	byIndex := make(map[int]string, len(links))
	for _, l := range links {
		byIndex[l.Index] = l.Name
	}
	found := map[string]*state.Qdisc{}
	err := retryDumpErr(func() error {
		clear(found)
		return dump(h.sock, unix.RTM_GETQDISC, unix.RTM_NEWQDISC, &nl.TcMsg{Family: nl.FAMILY_ALL}, nil, func(msg []byte) error {
			if len(msg) < sizeofTcMsg {
				return fmt.Errorf("short qdisc message (%d bytes)", len(msg))
			}
			ifindex := int(int32(binary.NativeEndian.Uint32(msg[4:8])))
			parent := binary.NativeEndian.Uint32(msg[12:16])
			if parent != netlink.HANDLE_ROOT {
				return nil
			}
			var kind string
			var opts []byte
			if err := nlattr.Each(msg[sizeofTcMsg:], func(typ uint16, v []byte) error {
				switch typ {
				case tcaKind:
					kind = nlattr.CString(v)
				case tcaOptions:
					opts = v
				}
				return nil
			}); err != nil {
				return err
			}
			var q *state.Qdisc
			switch kind {
			case "tbf":
				q = parseTbf(opts)
			case "netem":
				q = parseNetem(opts)
			}
			if name := byIndex[ifindex]; q != nil && name != "" {
				found[name] = q
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("list qdiscs: %w", err)
	}
	for i := range out {
		out[i].Qdisc = found[out[i].Name]
	}
	return nil
}

func retryDumpErr(fn func() error) error {
	_, err := retryDump(func() ([]struct{}, error) { return nil, fn() })
	return err
}

func parseTbf(opts []byte) *state.Qdisc {
	q := &state.Qdisc{Kind: "tbf"}
	_ = nlattr.Each(opts, func(typ uint16, v []byte) error {
		switch {
		case typ == tcaTbfParms && len(v) >= sizeofTbfQopt:
			if q.Rate == 0 {
				q.Rate = 8 * uint64(binary.NativeEndian.Uint32(v[tbfRateOffset:]))
			}
		case typ == tcaTbfRate64 && len(v) >= 8:
			q.Rate = 8 * binary.NativeEndian.Uint64(v)
		}
		return nil
	})
	return q
}

// parseNetem reads netem's options: a tc_netem_qopt, then attributes.
func parseNetem(opts []byte) *state.Qdisc {
	q := &state.Qdisc{Kind: "netem"}
	if len(opts) < sizeofNetemQopt {
		return q
	}
	q.Loss = percent(binary.NativeEndian.Uint32(opts[netemLossOffset:]))
	q.Duplicate = percent(binary.NativeEndian.Uint32(opts[netemDupOffset:]))
	_ = nlattr.Each(opts[nlaAlign(sizeofNetemQopt):], func(typ uint16, v []byte) error {
		switch {
		case typ == tcaNetemLatency && len(v) >= 8:
			q.Delay = int64(binary.NativeEndian.Uint64(v))
		case typ == tcaNetemJitter && len(v) >= 8:
			q.Jitter = int64(binary.NativeEndian.Uint64(v))
		case typ == tcaNetemReorder && len(v) >= netemProbSize:
			q.Reorder = percent(binary.NativeEndian.Uint32(v))
		case typ == tcaNetemCorrupt && len(v) >= netemProbSize:
			q.Corrupt = percent(binary.NativeEndian.Uint32(v))
		case typ == tcaNetemRate && len(v) >= netemRateSize:
			if q.Rate == 0 {
				q.Rate = 8 * uint64(binary.NativeEndian.Uint32(v))
			}
		case typ == tcaNetemRate64 && len(v) >= 8:
			q.Rate = 8 * binary.NativeEndian.Uint64(v)
		}
		return nil
	})
	return q
}

// percent reads a probability as netem keeps it (a fraction of 2^32-1),
// to the precision a file writes it.
func percent(p uint32) float64 {
	return math.Round(float64(p)/math.MaxUint32*100*percentPrecision) / percentPrecision
}

func nlaAlign(n int) int { return (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

// Netem reports whether the kernel has the netem qdisc: it tries to add
// one to lo in a namespace made for the test on a thread of its own, and
// freed when the thread goes back to its namespace, so nothing of the
// machine's changes. Asked once a process.
func (k *Kernel) Netem() bool {
	netemOnce.Do(func() { netemFound = probeNetem() == nil })
	return netemFound
}

var (
	netemOnce  sync.Once
	netemFound bool
)

// Equivalent to: `unshare -n tc qdisc add dev lo root netem delay 1ms`
func probeNetem() error {
	// OnThread puts the thread back in its namespace after: a thread left
	// to end in the throwaway one could be the main thread, which the Go
	// runtime keeps, and /proc/self/net would then show that namespace.
	return topons.OnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return err
		}
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.QdiscAdd(qdiscOf(lo.Attrs().Index, op.Impairment{Delay: time.Millisecond}))
	})
}
