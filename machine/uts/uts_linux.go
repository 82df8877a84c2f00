// Package uts is the UTS namespaces mechanism of package machine: each
// container's hostname and domainname, in a UTS namespace of its own kept
// as a bind mount in the project's runtime folder (names.Runtime.UTS), as
// ip netns keeps a network namespace in /run/netns. Fake is its in-memory
// counterpart.
package uts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
	"github.com/topolab/topo/safedir"
	"github.com/topolab/topo/state"
)

// Kernel is the real UTSNamespaces, under Runtime's root: every file is
// reached without following links (package safedir).
type Kernel struct {
	Runtime names.Runtime
}

var _ machine.UTSNamespaces = Kernel{}

func (k Kernel) tree() safedir.Tree { return safedir.Runtime(k.Runtime.Root) }

// nsGetNSType is ioctl NS_GET_NSTYPE (linux/nsfs.h): the type of the
// namespace a file of nsfs is.
const nsGetNSType = 0xb703

// isUTS reports whether the open file f is a UTS namespace (a mount of
// nsfs), rather than the empty file it is mounted on.
func isUTS(f *os.File) bool {
	var st unix.Statfs_t
	if unix.Fstatfs(int(f.Fd()), &st) != nil || st.Type != unix.NSFS_MAGIC {
		return false
	}
	t, err := unix.IoctlRetInt(int(f.Fd()), nsGetNSType)
	return err == nil && t == unix.CLONE_NEWUTS
}

// onThread runs fn on an OS thread of its own that ends after it: fn
// changes the thread's UTS namespace, which no other goroutine may run
// in.
func onThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		errc <- fn()
	}()
	return <-errc
}

// setNames sets this thread's UTS namespace's names; "" is the kernel's
// "(none)" for a domainname, a new namespace's.
func setNames(hostname, domainname string) error {
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("sethostname %q: %w", hostname, err)
	}
	if domainname == "" {
		domainname = "(none)"
	}
	if err := unix.Setdomainname([]byte(domainname)); err != nil {
		return fmt.Errorf("setdomainname %q: %w", domainname, err)
	}
	return nil
}

// Add makes a UTS namespace with its names and binds it at path: an empty
// file, root's, made first (or left by an add cut short) to mount it on.
//
// Equivalent to: `touch PATH; unshare --uts=PATH sh -c 'hostname H; domainname D'`
func (k Kernel) Add(path, hostname, domainname string) error {
	f, err := k.tree().OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if isUTS(f) {
		return fmt.Errorf("UTS namespace %s: %w", path, machine.ErrExist)
	}
	err = onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWUTS); err != nil {
			return fmt.Errorf("new UTS namespace: %w", err)
		}
		if err := setNames(hostname, domainname); err != nil {
			return err
		}
		// The file as opened, never a link put in its place since.
		target := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
		if err := unix.Mount("/proc/thread-self/ns/uts", target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind the UTS namespace at %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		_ = k.tree().Remove(path)
		return err
	}
	return nil
}

// Set changes the names of the UTS namespace at path.
//
// Equivalent to: `nsenter --uts=PATH sh -c 'hostname H; domainname D'`
func (k Kernel) Set(path, hostname, domainname string) error {
	f, err := k.open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return onThread(func() error {
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWUTS); err != nil {
			return fmt.Errorf("enter the UTS namespace %s: %w", path, err)
		}
		return setNames(hostname, domainname)
	})
}

// open opens the UTS namespace at path: ErrNotExist when there is none.
func (k Kernel) open(path string) (*os.File, error) {
	f, err := k.tree().OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("UTS namespace %s: %w", path, machine.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	if !isUTS(f) {
		f.Close()
		return nil, fmt.Errorf("UTS namespace %s: %w", path, machine.ErrNotExist)
	}
	return f, nil
}

// Del unmounts the UTS namespace at path and removes its file, then its
// folder and the project's when they are empty. The namespace itself
// lives on while a process is in it.
//
// Equivalent to: `umount PATH; rm PATH`
func (k Kernel) Del(path string) error {
	f, err := k.tree().OpenFile(path, unix.O_PATH, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Through the file as opened: the mount there, never what a link
	// would name.
	err = unix.Unmount(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.MNT_DETACH)
	f.Close()
	if err != nil && !errors.Is(err, unix.EINVAL) { // EINVAL: no mount there (an add cut short)
		return fmt.Errorf("unmount the UTS namespace %s: %w", path, err)
	}
	if err := k.tree().Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	dir := filepath.Dir(path)
	if k.tree().Rmdir(dir) == nil {
		_ = k.tree().Rmdir(filepath.Dir(dir))
	}
	return nil
}

// Observe reads the UTS namespaces of project's folder, with their names:
// entered, all of them, from one thread that ends after.
//
// Equivalent to: `for f in /run/topo/PROJECT/uts/*; do nsenter --uts=$f sh -c 'hostname; domainname'; done`
func (k Kernel) Observe(project string) ([]state.UTS, error) {
	dir := k.Runtime.UTSDir(project)
	entries, err := k.tree().ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var out []state.UTS
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		f, err := k.tree().OpenFile(p, os.O_RDONLY, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		out = append(out, state.UTS{NS: e.Name(), Path: p, Mounted: isUTS(f)})
	}
	err = onThread(func() error {
		for i, f := range files {
			if !out[i].Mounted {
				continue
			}
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWUTS); err != nil {
				return fmt.Errorf("enter the UTS namespace %s: %w", out[i].Path, err)
			}
			var u unix.Utsname
			if err := unix.Uname(&u); err != nil {
				return err
			}
			out[i].Hostname = cString(u.Nodename[:])
			if d := cString(u.Domainname[:]); d != "(none)" {
				out[i].Domainname = d
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func cString(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}
