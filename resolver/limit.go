package resolver

import (
	"log"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Caps on what one resolver process holds at once, so that a container
// flooding it with names that go upstream, or with TCP connections, costs
// it bounded descriptors and memory (DNS-BENCHMARK.md measures a flood).
// Past a cap a forwarded query is answered SERVFAIL at once and a TCP
// connection is closed; local names are answered all the same. The caps
// are per process and per namespace, so that one container that floods
// leaves the others room.
const (
	// maxForwards is Docker's maxConcurrent (libnetwork resolver.go):
	// queries upstream at once, each with a socket and a goroutine.
	maxForwards      = 1024
	maxForwardsPerNS = maxForwards / 2
	// TCP connections each hold a goroutine and up to a 64 KiB message.
	maxTCPConns      = 256
	maxTCPConnsPerNS = 64
)

// memoryLimit is the resolver process's soft memory limit (GOMEMLIMIT,
// unless the environment sets one): past it the collector runs harder,
// well before the 64 MiB the flood benchmark holds it to.
const memoryLimit = 48 << 20

// logEvery spaces the messages that say a cap was reached.
const logEvery = time.Minute

// slots counts what is held against a cap. A nil *slots has no cap.
type slots struct {
	n   atomic.Int32
	max int32
	// what is held and what is done past the cap, for the log.
	what, past string
	// last is when the cap was last logged (UnixNano).
	last atomic.Int64
}

func newSlots(max int, what, past string) *slots {
	return &slots{max: int32(max), what: what, past: past}
}

// What the caps hold, and do past them, as the log says it.
const (
	forwardsHeld = "queries forwarded upstream"
	forwardsPast = "answering SERVFAIL to more"
	tcpHeld      = "TCP connections"
	tcpPast      = "closing more as they come"
)

func (s *slots) take() bool {
	if s == nil {
		return true
	}
	if s.n.Add(1) > s.max {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *slots) give() {
	if s != nil {
		s.n.Add(-1)
	}
}

// takeBoth takes a slot of shared and one of own, or neither; on a full
// cap it logs, at most once per logEvery, which cap and where.
func takeBoth(shared, own *slots, ns string, logger *log.Logger) bool {
	full := shared
	if shared.take() {
		if own.take() {
			return true
		}
		shared.give()
		full = own
	}
	if logger != nil {
		now := time.Now().UnixNano()
		last := full.last.Load()
		if now-last >= int64(logEvery) && full.last.CompareAndSwap(last, now) {
			scope := "of all namespaces, the most the resolver holds"
			if full == own {
				scope = "of this namespace, the most one may hold"
			}
			logger.Printf("namespace %s: %d %s at once %s: %s until some end", ns, full.max, full.what, scope, full.past)
		}
	}
	return false
}

// limitListener closes, as soon as it accepts them, the connections past
// its caps: a flood of connections then costs nothing held.
type limitListener struct {
	net.Listener
	shared, own *slots
	ns          string
	log         *log.Logger
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if takeBoth(l.shared, l.own, l.ns, l.log) {
			return &limitConn{Conn: c, l: l}, nil
		}
		c.Close()
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.own.give()
		c.l.shared.give()
	})
	return err
}
