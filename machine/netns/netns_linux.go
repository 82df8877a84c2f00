// Package netns opens named network namespaces (the files iproute2 keeps
// under /run/netns) and runs code inside them, for the mechanisms of
// package machine. Namespace switching happens only here and in
// netlink.NewHandleAt, always on a locked OS thread.
package netns

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"github.com/vishvananda/netns"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
)

// Open opens a named namespace. A missing one is machine.ErrNotExist.
func Open(name string) (netns.NsHandle, error) {
	path, err := names.NetnsPath(name)
	if err != nil {
		return netns.None(), err
	}
	fd, err := netns.GetFromPath(path)
	if errors.Is(err, os.ErrNotExist) {
		return netns.None(), fmt.Errorf("namespace %s: %w", name, machine.ErrNotExist)
	}
	return fd, err
}

// List lists the named namespaces, sorted by name, as `ip netns list`.
func List() ([]string, error) {
	entries, err := os.ReadDir(names.NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Name() // ReadDir sorts by name
	}
	return out, nil
}

// OnThread runs fn on an OS thread of its own, locked to it, and lets fn
// change the thread's network namespace. Afterwards the thread goes back to
// the namespace it had; if that fails, the thread stays locked and ends
// with the goroutine, so that no other goroutine ever runs in the wrong
// namespace.
func OnThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open thread's network namespace: %w", err)
			return
		}
		defer origin.Close()
		err = fn()
		if rerr := netns.Set(origin); rerr != nil {
			errc <- errors.Join(err, fmt.Errorf("restore network namespace: %w", rerr))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// In runs fn on a thread in the namespace fd, through OnThread.
func In(fd netns.NsHandle, fn func() error) error {
	return OnThread(func() error {
		if err := netns.Set(fd); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return fn()
	})
}

// InNamed runs fn on a thread in the named namespace, or on this one for
// "": threads leave the host namespace only while locked (OnThread,
// netlink.NewHandleAt), so an unlocked goroutine's thread is in it.
func InNamed(name string, fn func() error) error {
	if name == "" {
		return fn()
	}
	fd, err := Open(name)
	if err != nil {
		return err
	}
	defer fd.Close()
	return In(fd, fn)
}
