package kernel

import (
	"errors"
	"fmt"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

// nsHandle is a netlink handle checked out of the cache. Close returns it.
type nsHandle struct {
	*netlink.Handle
	cache *handleCache
	ns    string
	ino   uint64
}

// Close gives the handle back to the cache for the next step.
func (h *nsHandle) Close() { h.cache.put(h) }

// handleCache holds idle handles by namespace name ("" is the host).
type handleCache struct {
	mu   sync.Mutex
	idle map[string][]*nsHandle
}

// get returns an idle handle bound to what name is now, or opens one.
// A missing namespace is ErrNotExist.
func (c *handleCache) get(k *Netlink, name string) (*nsHandle, error) {
	var ino uint64
	if name != "" {
		path, err := netnsPath(name)
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("namespace %s: %w", name, ErrNotExist)
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
		s.Handle.Close()
	}
	if h != nil {
		return h, nil
	}
	return c.open(k, name)
}

// open makes a new handle for name.
func (c *handleCache) open(k *Netlink, name string) (*nsHandle, error) {
	if name == "" {
		nh, err := netlink.NewHandleAt(k.host, unix.NETLINK_ROUTE)
		if err != nil {
			return nil, err
		}
		return &nsHandle{Handle: nh, cache: c}, nil
	}
	fd, err := openNetns(name)
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
	// The handle's socket keeps the namespace; the fd can go.
	nh, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	return &nsHandle{Handle: nh, cache: c, ns: name, ino: st.Ino}, nil
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
		h.Handle.Close()
	}
}
