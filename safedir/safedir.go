// Package safedir reaches the files topo writes, reads back and removes
// under the folders it owns (the runtime root, /run/topo, and
// /etc/netns) without ever following a symbolic link, and refuses a
// folder or file there that another user owns or that group or others
// may write.
//
// topo runs as root: a link planted at /run/topo/PROJECT/journal, or at
// /etc/netns/NS, would otherwise make it overwrite, append to or delete
// the file the link names; a journal or pid file that another user can
// write would make it undo, or signal, what that user says. So a path
// under a Tree is reached from the Tree's folder one component at a
// time, each opened beneath the one before with openat2(2) and
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS (O_NOFOLLOW on kernels before 5.6,
// which lack openat2), and each folder and file is checked once open
// (fstat, not a second lookup of its name). Only the Tree's own parent
// (/run, /etc) is reached as the system's links say.
//
// Folders a Tree makes get its DirMode from mkdirat(2) itself (0700 for
// the runtime), and files the mode their caller gives to openat2 (0600
// for state): nothing is made open and tightened after.
package safedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/names"
)

// LinkError says a path topo was to use is a symbolic link.
type LinkError struct {
	Path   string
	Target string // what the link names, "" if unreadable
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("%s is a symbolic link (to %q): topo never follows a link in the folders it writes; remove the link", e.Path, e.Target)
}

// OwnerError says a folder or file topo would trust belongs to another
// user, or that group or others may write it.
type OwnerError struct {
	Path string
	UID  uint32
	Mode uint32 // the permission bits, with setuid, setgid and sticky
}

func (e *OwnerError) Error() string {
	return fmt.Sprintf("%s is owned by uid %d with mode %04o: topo trusts only folders and files of its own user that no group or other user may write (it makes them 0700 and 0600); remove it, or chown and chmod go-w it if you made it",
		e.Path, e.UID, e.Mode)
}

// Tree is a folder topo owns, and everything beneath it.
type Tree struct {
	Root string
	// DirMode is the mode of the folders it makes (the root included).
	DirMode os.FileMode
}

// Dir is an open folder of a Tree.
type Dir struct {
	fd   int
	Path string
}

// Close closes the folder.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// noOpenat2 is set once openat2 is found missing (ENOSYS).
var noOpenat2 atomic.Bool

// openBeneath opens name, one path component, in the folder dirfd
// without following a link.
func openBeneath(dirfd int, name string, flags int, mode uint32) (int, error) {
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	if flags&unix.O_CREAT == 0 {
		mode = 0
	}
	for {
		var fd int
		var err error
		if noOpenat2.Load() {
			fd, err = unix.Openat(dirfd, name, flags, mode)
		} else {
			fd, err = unix.Openat2(dirfd, name, &unix.OpenHow{Flags: uint64(flags), Mode: uint64(mode),
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS})
			if err == unix.ENOSYS {
				noOpenat2.Store(true)
				continue
			}
		}
		// openat2 says EAGAIN when a rename raced its lookup.
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// rel is p relative to the root, refusing a path outside it.
func (t Tree) rel(p string) ([]string, error) {
	r, err := filepath.Rel(t.Root, filepath.Clean(p))
	if err != nil || !filepath.IsAbs(p) || r == ".." || strings.HasPrefix(r, "../") {
		return nil, fmt.Errorf("%s: not under %s", p, t.Root)
	}
	if r == "." {
		return nil, nil
	}
	return strings.Split(r, "/"), nil
}

// check refuses an open folder or file of another user, or one that
// group or others may write.
func check(fd int, path string) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Uid != uint32(os.Geteuid()) || st.Mode&0o022 != 0 {
		return &OwnerError{Path: path, UID: st.Uid, Mode: st.Mode & 0o7777}
	}
	return nil
}

// openErr names what failed: a link as a LinkError.
func openErr(dirfd int, name, path string, err error) error {
	if err == unix.ELOOP || err == unix.ENOTDIR || err == unix.EXDEV {
		var st unix.Stat_t
		if unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, _ := readlinkat(dirfd, name)
			return &LinkError{Path: path, Target: target}
		}
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, 4096)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// openRoot opens the Tree's folder, made if create and missing.
func (t Tree) openRoot(create bool) (int, error) {
	root := filepath.Clean(t.Root)
	parent, base := filepath.Dir(root), filepath.Base(root)
	pfd, err := unix.Open(parent, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT && create {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return -1, err
		}
		pfd, err = unix.Open(parent, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: parent, Err: err}
	}
	defer unix.Close(pfd)
	if create {
		if err := unix.Mkdirat(pfd, base, uint32(t.DirMode)); err != nil && err != unix.EEXIST {
			return -1, &fs.PathError{Op: "mkdir", Path: root, Err: err}
		}
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, openErr(pfd, base, root, err)
	}
	if err := check(fd, root); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// OpenDir opens the folder dir of the Tree, making it and the folders
// above it, with DirMode, if create.
func (t Tree) OpenDir(dir string, create bool) (*Dir, error) {
	parts, err := t.rel(dir)
	if err != nil {
		return nil, err
	}
	fd, err := t.openRoot(create)
	if err != nil {
		return nil, err
	}
	path := filepath.Clean(t.Root)
	for _, c := range parts {
		path = filepath.Join(path, c)
		if create {
			if err := unix.Mkdirat(fd, c, uint32(t.DirMode)); err != nil && err != unix.EEXIST {
				unix.Close(fd)
				return nil, &fs.PathError{Op: "mkdir", Path: path, Err: err}
			}
		}
		next, err := openBeneath(fd, c, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			err = openErr(fd, c, path, err)
			unix.Close(fd)
			return nil, err
		}
		unix.Close(fd)
		fd = next
		if err := check(fd, path); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return &Dir{fd: fd, Path: path}, nil
}

// MkdirAll makes dir and the folders above it, up to the root, each
// with DirMode.
func (t Tree) MkdirAll(dir string) error {
	d, err := t.OpenDir(dir, true)
	if err != nil {
		return err
	}
	return d.Close()
}

// parent opens the folder of p, made if create.
func (t Tree) parent(p string, create bool) (*Dir, string, error) {
	d, err := t.OpenDir(filepath.Dir(filepath.Clean(p)), create)
	return d, filepath.Base(p), err
}

// OpenFile opens the file name of the folder as os.OpenFile would, never
// through a link; an existing file must pass the owner check. perm is the
// mode of a file it creates.
func (d *Dir) OpenFile(name string, flag int, perm os.FileMode) (*os.File, error) {
	path := filepath.Join(d.Path, name)
	fd, err := openBeneath(d.fd, name, flag, uint32(perm))
	if err != nil {
		return nil, openErr(d.fd, name, path, err)
	}
	if err := check(fd, path); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// ReadFile reads the file name of the folder, in four system calls and
// the check's fstat (open, read, the read that says end of file, close),
// where os.ReadFile makes six: a down at N=500 reads 1000 such files
// before its first deletion.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	path := filepath.Join(d.Path, name)
	fd, err := openBeneath(d.fd, name, unix.O_RDONLY, 0)
	if err != nil {
		return nil, openErr(d.fd, name, path, err)
	}
	defer unix.Close(fd)
	if err := check(fd, path); err != nil {
		return nil, err
	}
	var buf [4096]byte
	var out []byte
	for {
		n, err := unix.Read(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
	}
}

// Lstat describes name without following it.
func (d *Dir) Lstat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return st, &fs.PathError{Op: "stat", Path: filepath.Join(d.Path, name), Err: err}
	}
	return st, nil
}

// notLink refuses a link at name; a missing name is fine.
func (d *Dir) notLink(name string) error {
	st, err := d.Lstat(name)
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		target, _ := readlinkat(d.fd, name)
		return &LinkError{Path: filepath.Join(d.Path, name), Target: target}
	}
	return nil
}

// Remove removes the file name of the folder, refusing a link; a missing
// file is fs.ErrNotExist.
func (d *Dir) Remove(name string) error {
	if err := d.notLink(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &fs.PathError{Op: "remove", Path: filepath.Join(d.Path, name), Err: err}
	}
	return nil
}

// Rmdir removes the empty folder name of the folder.
func (d *Dir) Rmdir(name string) error {
	if err := d.notLink(name); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR); err != nil {
		return &fs.PathError{Op: "rmdir", Path: filepath.Join(d.Path, name), Err: err}
	}
	return nil
}

// ReadDir lists the folder.
func (d *Dir) ReadDir() ([]fs.DirEntry, error) {
	fd, err := unix.Dup(d.fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), d.Path)
	defer f.Close()
	return f.ReadDir(-1)
}

// OpenFile opens p as Dir.OpenFile does, making its folder if the flags
// create the file.
func (t Tree) OpenFile(p string, flag int, perm os.FileMode) (*os.File, error) {
	d, name, err := t.parent(p, flag&os.O_CREATE != 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.OpenFile(name, flag, perm)
}

// ReadFile reads p.
func (t Tree) ReadFile(p string) ([]byte, error) {
	d, name, err := t.parent(p, false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadFile(name)
}

// Remove removes the file p; a missing one (or a missing folder) is
// success.
func (t Tree) Remove(p string) error {
	d, name, err := t.parent(p, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Rmdir removes the folder dir if it is empty; a missing one is success,
// a folder that holds something stays (and is no error).
func (t Tree) Rmdir(dir string) error {
	d, name, err := t.parent(dir, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Rmdir(name); err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) && !errors.Is(err, unix.EBUSY) {
		return err
	}
	return nil
}

// ReadDir lists dir; a missing one is fs.ErrNotExist.
func (t Tree) ReadDir(dir string) ([]fs.DirEntry, error) {
	d, err := t.OpenDir(dir, false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.ReadDir()
}

// WriteAtomic replaces p with data through the temporary file tmp (in
// the Tree too, in p's folder or another), so that a reader sees the old
// content or the new, never part of it. A file tmp left by a crash is
// removed first; a link at tmp or p is refused.
func (t Tree) WriteAtomic(tmp, p string, data []byte, perm os.FileMode) error {
	td, tname, err := t.parent(tmp, true)
	if err != nil {
		return err
	}
	defer td.Close()
	pd, pname, err := t.parent(p, true)
	if err != nil {
		return err
	}
	defer pd.Close()
	if err := pd.notLink(pname); err != nil {
		return err
	}
	if err := td.Remove(tname); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := td.OpenFile(tname, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = unix.Renameat(td.fd, tname, pd.fd, pname); err != nil {
			err = &fs.PathError{Op: "rename", Path: tmp, Err: err}
		}
	}
	if err != nil {
		_ = unix.Unlinkat(td.fd, tname, 0)
	}
	return err
}

// Runtime is the Tree of a runtime root (/run/topo): its folders are
// made 0700.
func Runtime(root string) Tree { return Tree{Root: root, DirMode: 0o700} }

// Netns is the Tree of /etc/netns: its folders are made 0755, as
// iproute2 makes them, for a command running as another user reads its
// resolv.conf and hosts.
var Netns = Tree{Root: names.NetnsEtcDir, DirMode: 0o755}

// Lstat describes p without following it.
func (t Tree) Lstat(p string) (unix.Stat_t, error) {
	d, name, err := t.parent(p, false)
	if err != nil {
		return unix.Stat_t{}, err
	}
	defer d.Close()
	return d.Lstat(name)
}
