package op

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Impairment is what a link's root qdisc does to the packets it sends: a
// rate alone is a tbf qdisc; delay, jitter, loss, duplication,
// corruption or reordering a netem qdisc, which then takes the rate too.
type Impairment struct {
	// Rate is in bits per second; 0 for none.
	Rate uint64 `json:"rate,omitempty"`
	// Delay and Jitter are durations.
	Delay  time.Duration `json:"delay,omitempty"`
	Jitter time.Duration `json:"jitter,omitempty"`
	// Loss, Duplicate, Corrupt and Reorder are percentages.
	Loss      float64 `json:"loss,omitempty"`
	Duplicate float64 `json:"duplicate,omitempty"`
	Corrupt   float64 `json:"corrupt,omitempty"`
	Reorder   float64 `json:"reorder,omitempty"`
}

// IsZero reports whether the impairment does nothing.
func (i Impairment) IsZero() bool { return i == Impairment{} }

// Kind is the qdisc that makes the impairment: "tbf" or "netem".
func (i Impairment) Kind() string {
	if i.Delay != 0 || i.Jitter != 0 || i.Loss != 0 || i.Duplicate != 0 || i.Corrupt != 0 || i.Reorder != 0 {
		return "netem"
	}
	return "tbf"
}

// TBF's queue: a burst of 10 ms of the rate, at least 16 KiB (more than
// a 9000-byte frame, which a smaller bucket could never send), and
// packets queued for up to 50 ms before they are dropped, as tc's
// examples of tbf have it.
const (
	tbfMinBurst = 16 << 10
	// TBFLatency is how long a packet may wait in a tbf queue.
	TBFLatency = 50 * time.Millisecond
)

// TBFBurst is the bucket, in bytes, of a tbf of rate bits per second.
func TBFBurst(rate uint64) uint32 {
	return uint32(max(rate/8/100, tbfMinBurst))
}

// TBFLimit is the queue, in bytes, of a tbf of rate bits per second.
func TBFLimit(rate uint64) uint32 {
	return TBFBurst(rate) + uint32(rate/8*uint64(TBFLatency/time.Millisecond)/1000)
}

// QdiscSet makes Imp the root qdisc of a link, replacing what was there.
type QdiscSet struct {
	NS, Link string
	Imp      Impairment
}

// QdiscDel removes a link's root qdisc: it sends as the kernel's default
// again.
type QdiscDel struct{ NS, Link string }

func (QdiscSet) Name() string { return "qdisc-set" }
func (QdiscDel) Name() string { return "qdisc-del" }

// tcIn is the start of a tc command in namespace ns ("" the host).
func tcIn(ns string) string {
	if ns == "" {
		return "tc "
	}
	return "tc -n " + ns + " "
}

// Command: `tc [-n NS] qdisc replace dev LINK root tbf rate R burst B
// latency 50ms`, or `... root netem [delay D [J]] [loss P%] [duplicate
// P%] [corrupt P%] [reorder P%] [rate R]`.
func (o QdiscSet) Command() string {
	i := o.Imp
	s := tcIn(o.NS) + "qdisc replace dev " + o.Link + " root "
	if i.Kind() == "tbf" {
		return fmt.Sprintf("%stbf rate %s burst %d latency %s", s, RateString(i.Rate), TBFBurst(i.Rate), TBFLatency)
	}
	w := []string{"netem"}
	if i.Delay != 0 {
		w = append(w, "delay", i.Delay.String())
		if i.Jitter != 0 {
			w = append(w, i.Jitter.String())
		}
	}
	for _, p := range []struct {
		word string
		pct  float64
	}{{"loss", i.Loss}, {"duplicate", i.Duplicate}, {"corrupt", i.Corrupt}, {"reorder", i.Reorder}} {
		if p.pct != 0 {
			w = append(w, p.word, strconv.FormatFloat(p.pct, 'g', -1, 64)+"%")
		}
	}
	if i.Rate != 0 {
		w = append(w, "rate", RateString(i.Rate))
	}
	return s + strings.Join(w, " ")
}

// Command: `tc [-n NS] qdisc del dev LINK root`.
func (o QdiscDel) Command() string { return tcIn(o.NS) + "qdisc del dev " + o.Link + " root" }

// RateString writes bits per second as tc does: the largest of gbit,
// mbit and kbit that divides it, else bit.
func RateString(r uint64) string {
	for _, u := range []struct {
		div    uint64
		suffix string
	}{{1e9, "gbit"}, {1e6, "mbit"}, {1e3, "kbit"}} {
		if r >= u.div && r%u.div == 0 {
			return strconv.FormatUint(r/u.div, 10) + u.suffix
		}
	}
	return strconv.FormatUint(r, 10) + "bit"
}

// The wire form of these operations (see wire.go).
func init() {
	register("qdisc-set", func(w *wire) (Operation, error) {
		if w.Qdisc == nil {
			return nil, fmt.Errorf("no qdisc")
		}
		return QdiscSet{NS: w.NS, Link: w.Link, Imp: *w.Qdisc}, nil
	})
	register("qdisc-del", func(w *wire) (Operation, error) { return QdiscDel{NS: w.NS, Link: w.Link}, nil })
}

func (o QdiscSet) fill(w *wire) {
	imp := o.Imp
	w.NS, w.Link, w.Qdisc = o.NS, o.Link, &imp
}
func (o QdiscDel) fill(w *wire) { w.NS, w.Link = o.NS, o.Link }
