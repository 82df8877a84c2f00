package links

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	topons "github.com/topolab/topo/machine/netns"
	"github.com/topolab/topo/names"
)

// addNetns creates a named network namespace with lo up and carrying mark.
// If any part fails, the namespace is removed again, so that the step
// either happens whole or not at all. The handle the thread used inside
// goes to the cache, for the steps that follow in the namespace.
//
// Equivalent to: `ip netns add NAME; ip -n NAME link set lo up alias MARK`
func (k *Kernel) addNetns(name, mark string) error {
	path, err := names.NetnsPath(name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(names.NetnsDir, 0o755); err != nil {
		return err
	}
	shareNetnsDir()
	// As iproute2: the file is the lock. O_EXCL makes an existing name
	// ErrExist and keeps a concurrent creator from sharing it.
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		return err
	}
	f.Close()
	h := &nsHandle{cache: &k.handles, ns: name}
	err = topons.OnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind mount %s: %w", path, err)
		}
		// Sockets made now are in the new namespace without a switch
		// (perf of up at N=500: opening handles in namespaces from
		// outside, a namespace file, two setns and a socket each, was
		// about 5% of all samples).
		sock, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		// The library's handle is made when a step asks for it (see
		// handleCache.get): an up's addresses and routes go on sock.
		h.sock = &nl.SocketHandle{Socket: sock}
		return setupLoopback(h.sock, mark)
	})
	var st unix.Stat_t
	if err == nil {
		err = unix.Stat(path, &st)
	}
	if err != nil {
		if h.sock != nil {
			h.close()
		}
		return errors.Join(err, removeNetns(name, path))
	}
	h.ino = st.Ino
	k.handles.put(h)
	return nil
}

// setupLoopback sets lo up and gives it mark, in one request on sh.
func setupLoopback(sh *nl.SocketHandle, mark string) error {
	if err := executeOn(sh, markUpRequest("lo", mark)); err != nil {
		return fmt.Errorf("set lo up and alias: %w", err)
	}
	return nil
}

var shareMu sync.Mutex

// shareNetnsDir makes /run/netns a shared mount point, as iproute2 does, so
// that deleting a namespace in one mount namespace unmounts it in all of
// them and the namespace can be freed. Without propagation the namespace
// still works in this mount namespace, so failures are ignored. One
// call at a time: namespaces are made two at a time (machine.side), and
// two calls that both found no mount point would stack two.
func shareNetnsDir() {
	shareMu.Lock()
	defer shareMu.Unlock()
	err := unix.Mount("", names.NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		// Not a mount point yet: make it one, bound on itself.
		if unix.Mount(names.NetnsDir, names.NetnsDir, "none", unix.MS_BIND|unix.MS_REC, "") == nil {
			_ = unix.Mount("", names.NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		}
	}
}

// removeNetns unmounts and removes a namespace file, and its /etc/netns
// folder if empty: the files topo wrote there go by steps of their own
// (which may come after, so that a down starts the namespaces' teardown
// sooner), and what others put there stays. Processes still inside keep
// the namespace alive, as with ip.
func removeNetns(name, path string) error {
	if err := unmountNetns(path); err != nil {
		return err
	}
	return removeNetnsName(name, path)
}

// unmountNetns is the first half of removeNetns: the namespace goes once
// nothing else (a process, a socket, an open file) holds it.
func unmountNetns(path string) error {
	// EINVAL (not mounted) and ENOENT are what "already gone" looks like.
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}

// removeNetnsName is the second half of removeNetns: the unmounted file,
// and the /etc/netns folder if empty. Left alone, the file is what a
// crash between the halves leaves: an empty file under /run/netns, which
// observation tells from a namespace, and the next down removes.
func removeNetnsName(name, path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	_ = unix.Rmdir(filepath.Join(names.NetnsEtcDir, name)) // only when empty
	return nil
}
