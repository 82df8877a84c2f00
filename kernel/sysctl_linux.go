package kernel

import (
	"fmt"
	"os"
	"strings"
)

// sysctlPath maps a dotted key to its file under /proc/sys, refusing keys
// that would leave it.
func sysctlPath(key string) (string, error) {
	parts := strings.Split(key, ".")
	for _, p := range parts {
		if p == "" || strings.ContainsAny(p, "/\x00") {
			return "", fmt.Errorf("invalid sysctl key %q", key)
		}
	}
	return "/proc/sys/" + strings.Join(parts, "/"), nil
}

// setSysctl writes a sysctl in the named namespace, or the host's for "".
// /proc/sys/net shows the network namespace of the thread that opens the
// file, so a namespace's keys are written from a thread inside it.
//
// Equivalent to: `[ip netns exec NS] sysctl -w KEY=VALUE`
func (k *Netlink) setSysctl(ns, key, value string) error {
	path, err := sysctlPath(key)
	if err != nil {
		return err
	}
	return k.writeProc(ns, path, value)
}

// writeProc writes a /proc/sys file of the named namespace, or the host's
// for "".
func (k *Netlink) writeProc(ns, path, value string) error {
	write := func() error { return os.WriteFile(path, []byte(value), 0o644) }
	if ns == "" {
		// Threads leave the host namespace only while locked (onThread,
		// netlink.NewHandleAt), so this goroutine's thread is in it.
		return write()
	}
	fd, err := openNetns(ns)
	if err != nil {
		return err
	}
	defer fd.Close()
	return inNetns(fd, write)
}

// readSysctl reads a sysctl of the host namespace.
func readSysctl(key string) (string, error) {
	path, err := sysctlPath(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
