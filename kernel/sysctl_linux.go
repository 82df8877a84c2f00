package kernel

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
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
	err = k.writeProc(ns, path, value)
	if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(key, "net.ipv6.") && !ipv6() {
		return nil // nothing of IPv6 to set: it is off, as wanted
	}
	return err
}

// ipv6 reports whether the kernel has IPv6 (not built without it, nor
// booted with ipv6.disable=1).
func ipv6() bool {
	_, err := os.Stat("/proc/sys/net/ipv6")
	return err == nil
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

// disableIPv6 turns IPv6 off on a link of the named namespace, or of the
// host for "". A kernel without IPv6 has nothing to turn off.
//
// A host link's sysctl is opened from a folder held open, not by its
// path: looking up /proc/sys/net walks one dentry per network namespace
// (proc hashes every namespace's "net" alike), 18 µs a host veth at
// N=1000 against 5 µs from the folder.
//
// Equivalent to: `[ip netns exec NS] sysctl -w net.ipv6.conf.LINK.disable_ipv6=1`
func (k *Netlink) disableIPv6(ns, link string) error {
	name := link + "/disable_ipv6"
	if strings.ContainsAny(link, "/\x00") || link == "." || link == ".." {
		return fmt.Errorf("invalid link name %q", link)
	}
	var err error
	if ns != "" {
		err = k.writeProc(ns, "/proc/sys/net/ipv6/conf/"+name, "1")
	} else if err = k.hostIPv6Conf.open(); err == nil {
		err = writeAt(k.hostIPv6Conf.fd, name, "1")
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// confDir is the host's /proc/sys/net/ipv6/conf, opened on first use.
type confDir struct {
	once sync.Once
	fd   int
	err  error
}

func (c *confDir) open() error {
	c.once.Do(func() {
		// Threads leave the host namespace only while locked (onThread,
		// netlink.NewHandleAt), so this goroutine's thread is in it.
		c.fd, c.err = unix.Open("/proc/sys/net/ipv6/conf", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if c.err != nil {
			c.err = &os.PathError{Op: "open", Path: "/proc/sys/net/ipv6/conf", Err: c.err}
		}
	})
	return c.err
}

// writeAt writes value to the file name of the folder dir.
func writeAt(dir int, name, value string) error {
	fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}
