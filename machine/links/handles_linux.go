package links

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	topons "github.com/topolab/topo/machine/netns"
	"github.com/topolab/topo/names"
)

// Opening a netlink handle in a named namespace costs a namespace file
// open, two setns calls on a locked thread and a socket: more than most
// steps themselves (profile of `topo up` at N=500: about a third of the
// wall time of an addr-add or a route-add). One command touches each
// namespace several times (observe, veth peer, address, route), so the
// Netlink kernel keeps the handles it opened and hands them out again.
//
// A cached handle is bound to the namespace it was opened in, not to its
// name: before reuse, the name's inode is compared with the handle's, so a
// namespace deleted and made again under the same name (by a rollback, or
// by someone else) gets a fresh handle. Deleting a namespace closes its
// handles, since an open socket would keep the dead namespace alive.

// nsHandle is a namespace's netlink socket checked out of the cache, and
// the library's handle in the same namespace when asked for. Close
// returns both.
type nsHandle struct {
	// Handle is the library's, for its calls; nil in a handle from
	// socket until handle asks for one.
	*netlink.Handle
	// sock is for topo's own requests and dumps (dump_linux.go): the
	// library's dumps decode every attribute of every link, twice the
	// time of the kernel's side of the dump.
	sock  *nl.SocketHandle
	cache *handleCache
	ns    string
	ino   uint64
	// links is the namespace's links as this command's observation read
	// them through this handle, nil if it did not or if a change went
	// through the handle since: a deletion checks against them rather
	// than dumping again.
	links []linkInfo
}

// Close gives the handle back to the cache for the next step.
func (h *nsHandle) Close() { h.cache.put(h) }

// close closes the sockets.
func (h *nsHandle) close() {
	if h.Handle != nil {
		h.Handle.Close()
	}
	h.sock.Close()
}

// handleCache holds idle handles by namespace name ("" is the host).
type handleCache struct {
	mu   sync.Mutex
	idle map[string][]*nsHandle
}

// get returns an idle handle bound to what name is now, or opens one;
// with lib, one that has the library's handle too. A missing namespace is
// ErrNotExist.
func (c *handleCache) get(k *Kernel, name string, lib bool) (*nsHandle, error) {
	var ino uint64
	if name != "" {
		path, err := names.NetnsPath(name)
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("namespace %s: %w", name, machine.ErrNotExist)
			}
			return nil, fmt.Errorf("namespace %s: %w", name, err)
		}
		ino = st.Ino
	}
	c.mu.Lock()
	var stale []*nsHandle
	var h *nsHandle
	for hs := c.idle[name]; len(hs) > 0 && h == nil; hs = c.idle[name] {
		last := hs[len(hs)-1]
		c.idle[name] = hs[:len(hs)-1]
		if last.ino == ino {
			h = last
		} else {
			stale = append(stale, last)
		}
	}
	c.mu.Unlock()
	for _, s := range stale {
		s.close()
	}
	if h == nil {
		return c.open(k, name, lib)
	}
	if lib && h.Handle == nil {
		if err := c.addLib(k, h); err != nil {
			h.close()
			if errors.Is(err, errMoved) {
				return c.open(k, name, lib)
			}
			return nil, err
		}
	}
	return h, nil
}

// errMoved says a namespace's name now points at another namespace.
var errMoved = errors.New("namespace replaced")

// open makes a new handle for name.
func (c *handleCache) open(k *Kernel, name string, lib bool) (*nsHandle, error) {
	if name == "" {
		sock, err := nl.GetNetlinkSocketAt(k.host, k.host, unix.NETLINK_ROUTE)
		if err != nil {
			return nil, err
		}
		h := &nsHandle{sock: &nl.SocketHandle{Socket: sock}, cache: c}
		if h.Handle, err = netlink.NewHandleAt(k.host, unix.NETLINK_ROUTE); err != nil {
			h.close()
			return nil, err
		}
		return h, nil
	}
	fd, err := topons.Open(name)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	// The inode of what was opened, not of the name: a later rename
	// cannot make the handle look current.
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		return nil, fmt.Errorf("namespace %s: %w", name, err)
	}
	// The sockets keep the namespace; the fd can go.
	sock, err := nl.GetNetlinkSocketAt(fd, k.host, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	h := &nsHandle{sock: &nl.SocketHandle{Socket: sock}, cache: c, ns: name, ino: st.Ino}
	if lib {
		if h.Handle, err = netlink.NewHandleAt(fd, unix.NETLINK_ROUTE); err != nil {
			h.close()
			return nil, err
		}
	}
	return h, nil
}

// addLib gives h the library's handle, in h's namespace: errMoved if the
// name now points at another one.
func (c *handleCache) addLib(k *Kernel, h *nsHandle) error {
	fd, err := topons.Open(h.ns)
	if err != nil {
		return err
	}
	defer fd.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(fd), &st); err != nil {
		return fmt.Errorf("namespace %s: %w", h.ns, err)
	}
	if st.Ino != h.ino {
		return errMoved
	}
	h.Handle, err = netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
	return err
}

func (c *handleCache) put(h *nsHandle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle == nil {
		c.idle = map[string][]*nsHandle{}
	}
	c.idle[h.ns] = append(c.idle[h.ns], h)
}

// forget closes the idle handles of a namespace that is being deleted or
// made.
func (c *handleCache) forget(name string) {
	c.mu.Lock()
	hs := c.idle[name]
	delete(c.idle, name)
	c.mu.Unlock()
	for _, h := range hs {
		h.close()
	}
}
