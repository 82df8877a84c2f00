package resolver

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/netip"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/miekg/dns"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/resolver/records"
)

// Address is where the resolver answers inside each namespace, as
// Docker's embedded DNS does.
const Address = "127.0.0.11:53"

// Server listens in many namespaces at once and answers each from the
// records its namespace may see.
type Server struct {
	// NetnsDir holds the named namespaces (/run/netns).
	NetnsDir string
	// Addr is the address to listen on in each namespace (Address).
	Addr     string
	Upstream Upstream
	Log      *log.Logger

	store     atomic.Pointer[Store]
	mu        sync.Mutex
	listeners map[string]*listener
	udp       *udpLoop
	// forwards and tcpConns are the caps all namespaces share.
	forwards, tcpConns *slots
}

// listener is the UDP and TCP server of one namespace.
type listener struct {
	id  records.NamespaceID
	udp int // a socket served by the Server's udpLoop
	tcp *dns.Server
}

// NewServer returns a server with no records and no listener.
func NewServer(up Upstream, logger *log.Logger) (*Server, error) {
	loop, err := newUDPLoop(up)
	if err != nil {
		return nil, err
	}
	s := &Server{NetnsDir: "/run/netns", Addr: Address, Upstream: up, Log: logger, listeners: map[string]*listener{}, udp: loop,
		forwards: newSlots(maxForwards, forwardsHeld, forwardsPast), tcpConns: newSlots(maxTCPConns, tcpHeld, tcpPast)}
	s.store.Store(NewStore(&records.Document{}))
	return s, nil
}

// Load serves d: the new records first, for every namespace at once, then
// listeners in the namespaces that have none (or whose namespace was made
// again since), and last it closes those of namespaces d no longer has.
// Listeners that stay are not touched, so no query to them is lost. It
// returns the namespaces served and a problem per namespace it could not
// listen in.
func (s *Server) Load(d *records.Document) (map[string]records.NamespaceID, []error) {
	s.store.Store(NewStore(d))
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	want := map[string]bool{}
	for _, ns := range d.Namespaces {
		want[ns.Name] = true
		path := filepath.Join(s.NetnsDir, ns.Name)
		id, err := records.NamespaceIDOf(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: %w", ns.Name, err))
			s.close(ns.Name)
			continue
		}
		if l := s.listeners[ns.Name]; l != nil && l.id == id {
			continue
		}
		s.close(ns.Name)
		l, err := s.listen(ns.Name, path, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("namespace %s: listen on %s: %w", ns.Name, s.Addr, err))
			continue
		}
		s.listeners[ns.Name] = l
	}
	for name := range s.listeners {
		if !want[name] {
			s.close(name)
		}
	}
	served := map[string]records.NamespaceID{}
	for name, l := range s.listeners {
		served[name] = l.id
	}
	return served, errs
}

// Close stops every listener.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.listeners))
	for name := range s.listeners {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s.close(name)
	}
	s.udp.close()
}

func (s *Server) close(name string) {
	l := s.listeners[name]
	if l == nil {
		return
	}
	delete(s.listeners, name)
	s.udp.remove(l.udp)
	_ = l.tcp.Shutdown()
}

// listen opens the sockets of namespace name and starts serving them.
func (s *Server) listen(name, path string, id records.NamespaceID) (*listener, error) {
	udp, ln, err := socketsIn(path, s.Addr)
	if err != nil {
		return nil, err
	}
	h := &Handler{NS: name, Store: &s.store, Upstream: s.Upstream,
		forwards: s.forwards, nsForwards: newSlots(maxForwardsPerNS, forwardsHeld, forwardsPast), log: s.Log}
	ln = &limitListener{Listener: ln, shared: s.tcpConns, own: newSlots(maxTCPConnsPerNS, tcpHeld, tcpPast), ns: name, log: s.Log}
	l := &listener{id: id, udp: udp, tcp: &dns.Server{Listener: ln, Handler: h}}
	started := make(chan struct{})
	failed := make(chan error, 1)
	l.tcp.NotifyStartedFunc = func() { close(started) }
	go func() {
		err := l.tcp.ActivateAndServe()
		if err != nil && s.Log != nil {
			s.Log.Printf("namespace %s: serving TCP stopped: %v", name, err)
		}
		failed <- err
	}()
	select {
	case <-started:
	case err := <-failed:
		unix.Close(udp)
		ln.Close()
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := s.udp.add(udp, h); err != nil {
		_ = l.tcp.Shutdown()
		return nil, err
	}
	return l, nil
}

// socketsIn opens a UDP and a TCP socket bound to addr inside the namespace
// at path. Sockets stay in the namespace they were made in, whatever thread
// uses them later: only their creation needs the switch, done on a locked
// thread that returns to the process's namespace afterwards or, if it
// cannot, ends with its goroutine so that nothing else runs on it.
func socketsIn(path, addr string) (int, net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return -1, nil, fmt.Errorf("listen address %q: want IPv4:PORT", addr)
	}
	type result struct {
		udp int
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		r := result{udp: -1}
		defer func() { done <- r }()
		origin, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			r.err = fmt.Errorf("open thread's network namespace: %w", err)
			return
		}
		defer origin.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			r.err = err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			r.err = fmt.Errorf("enter network namespace: %w", err)
			return
		}
		r.udp, r.err = udpSocket(ap)
		if r.err == nil {
			r.ln, r.err = net.Listen("tcp4", addr)
			if r.err != nil {
				unix.Close(r.udp)
				r.udp = -1
			}
		}
		if err := netns.Set(origin); err != nil {
			// Stay locked: the thread dies with this goroutine.
			if r.udp >= 0 {
				unix.Close(r.udp)
				r.ln.Close()
			}
			r.udp, r.ln = -1, nil
			r.err = errors.Join(r.err, fmt.Errorf("restore network namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
	}()
	r := <-done
	return r.udp, r.ln, r.err
}
