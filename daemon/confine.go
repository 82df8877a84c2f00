package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/topolab/topo/privilege"
	"github.com/topolab/topo/safedir"
)

// A confined command (a container's) is started as `ip netns exec` would
// start it, and then held the way Docker holds a container's process:
//
//   - in a PID namespace of its own, whose first process it is: it cannot
//     name, signal or trace any other process, and CAP_NET_ADMIN cannot
//     reach another network namespace through a pid (IFLA_NET_NS_PID 1 is
//     itself); when it ends, the kernel ends every process it left, so
//     nothing of it outlives it or down;
//   - in a mount namespace of its own, a copy of the host's (as ip netns
//     exec makes): its namespace's /sys, /etc/netns/NS files over /etc, a
//     /proc of its PID namespace (where the kernel's procfs takes pidns=,
//     as 6.18's does), and no namespace files (/run/netns/*, any
//     nsfs mount), so that it cannot open another namespace either;
//   - with the capabilities privilege.Settings.Caps gives, as its bounding
//     set, and as its permitted and effective sets when it runs as root;
//     none inheritable or ambient; no_new_privs as root unless privileged
//     (a non-root user keeps what setuid programs and file capabilities
//     give it, as in Docker: that is the only way it has any);
//   - as its user, with a clean environment.
//
// All of it is set up on an OS thread of topo's that the new process is
// forked from, and that dies after it: no helper process, no extra exec.
// Namespaces, capabilities and no_new_privs are per thread in Linux and a
// child inherits its forking thread's; Go forks from the calling thread.

// defaultPath is the PATH a confined command gets, Docker's.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// cleanEnv is a confined command's environment: PATH, HOME and TERM (no
// terminal: its output goes to a log), then extra, KEY=VALUE each.
func cleanEnv(home string, extra []string) []string {
	return append([]string{"PATH=" + defaultPath, "HOME=" + home, "TERM=dumb"}, extra...)
}

// lookPath finds a program as the command's PATH would, not topo's.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, executable(name)
	}
	for _, dir := range filepath.SplitList(defaultPath) {
		if p := filepath.Join(dir, name); executable(p) == nil {
			return p, nil
		}
	}
	return "", fs.ErrNotExist
}

func executable(path string) error {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return err
	case fi.IsDir() || fi.Mode()&0o111 == 0:
		return fs.ErrPermission
	}
	return nil
}

// confinement is what Start resolved for a confined command.
type confinement struct {
	user privilege.User
	caps privilege.Set
	nnp  bool
}

func resolveConfinement(s Spec) (*confinement, error) {
	u, err := privilege.LookupUser(s.Privileges.User)
	if err != nil {
		return nil, err
	}
	last, err := capLastCap()
	if err != nil {
		return nil, err
	}
	return &confinement{
		user: u,
		caps: s.Privileges.Caps(s.NS != "").Known(last),
		nnp:  u.UID == 0 && !s.Privileges.Privileged,
	}, nil
}

// capLastCap is the kernel's highest capability number.
var capLastCap = sync.OnceValues(func() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read the kernel's capabilities: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
})

// procPidnsMissing is set once the kernel has refused procfs's pidns=
// option: later commands keep the host's /proc without trying.
var procPidnsMissing atomic.Bool

// startConfined starts cmd confined (see above) and returns once it
// runs.
func startConfined(cmd *exec.Cmd, s Spec, c *confinement) error {
	// Go checks, once per process, that clone(CLONE_PIDFD) works, by
	// forking a child that exits at once (os.checkPidfd, at the first
	// StartProcess). Forked from the command's thread, that child would be
	// the first process of the command's PID namespace, and its exit would
	// end the namespace before the command is in it (fork: ENOMEM).
	// FindProcess makes the check here, on an ordinary thread.
	if p, err := os.FindProcess(os.Getpid()); err == nil {
		_ = p.Release()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread, whose namespaces /proc/self shows for the
			// whole of topo, and which Go never ends: it must not become
			// the command's. While this goroutine holds it, the one
			// startConfined starts runs on another thread.
			done <- startConfined(cmd, s, c)
			runtime.UnlockOSThread()
			return
		}
		// Never unlocked: this thread's namespaces, capabilities and
		// no_new_privs are the command's now, and Go ends a thread whose
		// goroutine returns locked to it.
		done <- enterAndStart(cmd, s, c)
	}()
	return <-done
}

// enterAndStart runs on the thread the command is forked from.
func enterAndStart(cmd *exec.Cmd, s Spec, c *confinement) error {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_NEWPID); err != nil {
		return fmt.Errorf("new mount and PID namespaces: %w", err)
	}
	if s.NS != "" {
		if err := enterNetns(s.NS); err != nil {
			return err
		}
	}
	if s.UTS != "" {
		if err := EnterUTS(s.Tree, s.UTS); err != nil {
			return err
		}
	}
	// Nothing mounted or unmounted from here on reaches the host's
	// mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	if err := hideNamespaces(s.Tree.Root); err != nil {
		return err
	}
	if s.NS != "" {
		if err := mountNetnsFiles(s.NS); err != nil {
			return err
		}
	}
	if err := dropCaps(c.caps, c.nnp); err != nil {
		return err
	}

	freshProc := !procPidnsMissing.Load()
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setsid:     true,
		Credential: &syscall.Credential{Uid: c.user.UID, Gid: c.user.GID, Groups: c.user.Groups},
		// Stopped at its first instruction, so that its /proc is its
		// PID namespace's before it can look: the namespace has no file
		// to mount it by until its first process exists.
		Ptrace: freshProc,
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if freshProc {
		if err := mountProcAndGo(cmd.Process.Pid); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return err
		}
	}
	return nil
}

// enterNetns moves this thread into the named network namespace.
func enterNetns(ns string) error {
	fd, err := unix.Open(filepath.Join(netnsDir, ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter namespace %s: %w", ns, err)
	}
	return nil
}

// EnterUTS moves this thread into the UTS namespace bound at path, a
// file of tree (reached without following links): the container's
// hostname.
func EnterUTS(tree safedir.Tree, path string) error {
	f, err := tree.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("UTS namespace: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("enter the UTS namespace %s: %w", path, err)
	}
	return nil
}

// netnsDir is where ip netns keeps named namespaces.
const netnsDir = "/run/netns"

// hideNamespaces makes every namespace file (nsfs mount) unreachable, so
// that the command cannot open another namespace and hand it to setns or
// to netlink (IFLA_NET_NS_FD): an empty read-only tmpfs goes over
// /run/netns, where ip netns and topo keep theirs, and one over topo's
// runtime root (the UTS namespaces, and the other containers' logs and
// records, which no command needs), and those elsewhere (Docker's
// /run/docker/netns, say) are unmounted. One mount for each folder, not an
// unmount each: every unmount waits for an RCU grace period, and a host
// with N namespaces would make each start cost N.
func hideNamespaces(runtimeRoot string) error {
	hidden := []string{netnsDir}
	if runtimeRoot != "" {
		hidden = append(hidden, filepath.Clean(runtimeRoot))
	}
	for _, dir := range hidden {
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755,size=4k"); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hide %s: %w", dir, err)
		}
	}
	others, err := otherNamespaceFiles()
	if err != nil {
		return err
	}
	for _, mp := range others {
		if runtimeRoot != "" && strings.HasPrefix(mp, filepath.Clean(runtimeRoot)+"/") {
			continue // under the tmpfs
		}
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hide namespace file %s: %w", mp, err)
		}
	}
	return nil
}

// otherNamespaceFiles lists the nsfs mounts outside /run/netns, read
// once per topo process from its mount namespace: a start reads no
// mountinfo (half a millisecond with a hundred namespaces mounted), and
// within one run of topo only /run/netns gains namespace files.
var otherNamespaceFiles = sync.OnceValues(func() ([]string, error) {
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		// Fields: id parent major:minor root mountpoint options
		// [optional...] - fstype source superoptions.
		pre, post, ok := strings.Cut(line, " - ")
		f := strings.Fields(pre)
		if !ok || len(f) < 5 || !strings.HasPrefix(post, "nsfs ") {
			continue
		}
		if mp := unescapeMount(f[4]); !strings.HasPrefix(mp, netnsDir+"/") {
			out = append(out, mp)
		}
	}
	return out, nil
})

// unescapeMount undoes mountinfo's octal escapes of blanks and backslashes.
func unescapeMount(s string) string {
	return strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(s)
}

// mountNetnsFiles does what ip netns exec does after entering NS: a /sys
// of the namespace (so that /sys/class/net shows its links), and each file
// of /etc/netns/NS bound over its /etc namesake (resolv.conf, hosts).
func mountNetnsFiles(ns string) error {
	var flags uintptr
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil {
		// No sysfs there, or one that cannot go: mount over it, read-only
		// if it is (a read-write one cannot shadow it).
		var st unix.Statfs_t
		if unix.Statfs("/sys", &st) == nil && st.Flags&unix.ST_RDONLY != 0 {
			flags = unix.MS_RDONLY
		}
	}
	if err := unix.Mount(ns, "/sys", "sysfs", flags, ""); err != nil {
		return fmt.Errorf("mount the /sys of namespace %s: %w", ns, err)
	}
	dir := filepath.Join("/etc/netns", ns)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		src, dst := filepath.Join(dir, e.Name()), filepath.Join("/etc", e.Name())
		err := unix.Mount(src, dst, "none", unix.MS_BIND, "")
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("bind %s over %s: %w", src, dst, err)
		}
	}
	return nil
}

// dropCaps limits this thread's bounding set to caps, empties its
// inheritable and ambient sets and, with nnp, sets no_new_privs; the
// permitted and effective sets stay whole, for the child to change its
// user with. A root child's exec then gets caps as permitted and
// effective: (inheritable & file's) | (file's permitted & bounding), where
// root's file sets count as full; a non-root child's setuid clears them.
func dropCaps(caps privilege.Set, nnp bool) error {
	last, err := capLastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if caps.Has(c) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clear inheritable capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if nnp {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	return nil
}

// mountProcAndGo waits for the traced command to stop at its first
// instruction, mounts a /proc of its PID namespace over the one its mount
// namespace (this thread's) has, and lets it go. A kernel whose procfs has
// no pidns= leaves the host's /proc, and later commands are not stopped.
func mountProcAndGo(pid int) error {
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return fmt.Errorf("wait for the command to stop at its start: %w", err)
	}
	if !ws.Stopped() {
		return fmt.Errorf("the command ended before it ran (%v)", ws)
	}
	mountErr := mountProc(pid)
	if errors.Is(mountErr, unix.EINVAL) {
		procPidnsMissing.Store(true)
		mountErr = nil
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return errors.Join(mountErr, fmt.Errorf("let the command go: %w", err))
	}
	return mountErr
}

// mountProc mounts a procfs of pid's PID namespace on /proc.
//
// Equivalent to: `mount -t proc -o nosuid,nodev,noexec,pidns=/proc/PID/ns/pid proc /proc`
func mountProc(pid int) error {
	nsfd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/pid", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("the command's PID namespace: %w", err)
	}
	defer unix.Close(nsfd)
	fsfd, err := unix.Fsopen("proc", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("a /proc for the command: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetFd(fsfd, "pidns", nsfd); err != nil {
		return fmt.Errorf("a /proc of the command's PID namespace: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("a /proc for the command: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return fmt.Errorf("a /proc for the command: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, "/proc", unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount the command's /proc: %w", err)
	}
	return nil
}

// pidNS is the inode of pid's PID namespace: the mark of a confined
// command, which a recycled pid does not carry.
func pidNS(pid int) (uint64, error) {
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(link, "pid:[")
	if !ok || !strings.HasSuffix(s, "]") {
		return 0, fmt.Errorf("/proc/%d/ns/pid: unexpected link %q", pid, link)
	}
	return strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
}

// inNamespace lists the live processes in PID namespace ns other than
// leader; zombies are left out (a leader that does not reap keeps its
// ended children as zombies until it ends).
func inNamespace(ns uint64, leader int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == leader {
			continue
		}
		if n, err := pidNS(pid); err == nil && n == ns {
			if _, state, err := stat(pid); err == nil && state != "Z" && state != "X" {
				out = append(out, pid)
			}
		}
	}
	return out
}

// signalNamespace sends sig to every process of PID namespace ns but its
// leader. Each is signalled through a pidfd opened before its namespace is
// checked again, so that a pid recycled meanwhile is never signalled.
// It returns how many it found.
func signalNamespace(ns uint64, leader int, sig unix.Signal) int {
	pids := inNamespace(ns, leader)
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		if n, err := pidNS(pid); err == nil && n == ns {
			_ = unix.PidfdSendSignal(fd, sig, nil, 0)
		}
		unix.Close(fd)
	}
	return len(pids)
}

// sigMask is a mask of /proc/PID/status: SigCgt (caught) or SigIgn
// (ignored), bit sig-1 for each signal.
func sigMask(pid int, field string) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			mask, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return mask
		}
	}
	return 0
}

// endsOn reports whether sig, at its default action, would end pid: it
// neither catches nor ignores it. A PID namespace's first process gets no
// signal it does not catch, not even from outside, but SIGKILL.
func endsOn(pid int, sig unix.Signal) bool {
	bit := uint64(1) << (uint(sig) - 1)
	return (sigMask(pid, "SigCgt")|sigMask(pid, "SigIgn"))&bit == 0
}
