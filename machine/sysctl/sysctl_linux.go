// Package sysctl is the sysctl mechanism of package machine: keys under
// /proc/sys, of the host or of a named namespace. Fake is its in-memory
// counterpart.
package sysctl

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	topons "github.com/topolab/topo/machine/netns"
	"github.com/topolab/topo/names"
)

// Kernel is the real Sysctls.
type Kernel struct{}

var _ machine.Sysctls = Kernel{}

// Set writes a sysctl in the named namespace, or the host's for "".
// /proc/sys/net shows the network namespace of the thread that opens the
// file, so a namespace's keys are written from a thread inside it.
//
// Equivalent to: `[ip netns exec NS] sysctl -w KEY=VALUE`
func (Kernel) Set(ns, key, value string) error {
	path, ok := names.SysctlPath(key)
	if !ok {
		return fmt.Errorf("invalid sysctl key %q", key)
	}
	err := topons.InNamed(ns, func() error { return os.WriteFile(path, []byte(value), 0o644) })
	if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(key, "net.ipv6.") && !ipv6() {
		return nil // nothing of IPv6 to set: it is off, as wanted
	}
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sysctl %s: %w", key, machine.ErrNotExist)
	}
	return err
}

// Get reads a sysctl of the host namespace. An interface's disable_ipv6
// on a kernel without IPv6 reads 1: IPv6 is off.
//
// Equivalent to: `sysctl -n KEY`
func (Kernel) Get(key string) (string, bool, error) {
	path, ok := names.SysctlPath(key)
	if !ok {
		return "", false, fmt.Errorf("invalid sysctl key %q", key)
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && strings.HasPrefix(key, "net.ipv6.") && strings.HasSuffix(key, ".disable_ipv6") && !ipv6():
		return "1", true, nil
	case errors.Is(err, os.ErrNotExist):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	return strings.TrimSpace(string(b)), true, nil
}

// GetIn reads keys in the named namespace, from a thread inside it.
//
// Equivalent to: `ip netns exec NS sysctl -n KEY...`
func (Kernel) GetIn(ns string, keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	err := topons.InNamed(ns, func() error { return readKeys(keys, out) })
	return out, err
}

// Fresh reads keys in a namespace made for it on a thread of its own,
// which then goes back to its namespace (so the new one is freed): a new
// namespace's values.
//
// Equivalent to: `unshare -n sysctl -n KEY...`
func (Kernel) Fresh(keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	err := topons.OnThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("make a namespace to read sysctls in: %w", err)
		}
		return readKeys(keys, out)
	})
	return out, err
}

// readKeys reads keys of the calling thread's namespace into out,
// leaving out those it does not have.
func readKeys(keys []string, out map[string]string) error {
	for _, key := range keys {
		path, ok := names.SysctlPath(key)
		if !ok {
			return fmt.Errorf("invalid sysctl key %q", key)
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		out[key] = strings.TrimSpace(string(b))
	}
	return nil
}

// ipv6 reports whether the kernel has IPv6 (not built without it, nor
// booted with ipv6.disable=1).
func ipv6() bool {
	_, err := os.Stat("/proc/sys/net/ipv6")
	return err == nil
}
