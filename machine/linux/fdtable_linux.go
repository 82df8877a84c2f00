package linux

import "golang.org/x/sys/unix"

// reservedFiles is how many file descriptors GrowFileTable makes room
// for: a command keeps a netlink socket open in each namespace it touches
// (see handleCache), and a few dozen files besides.
const reservedFiles = 4096

// GrowFileTable makes the process's file descriptor table hold
// reservedFiles descriptors (fewer if RLIMIT_NOFILE is lower), in one
// step. Linux grows the table by doubling it when a descriptor does not
// fit, and in a process of several threads, as every Go program is, each
// growth waits for an RCU grace period (synchronize_rcu in
// expand_fdtable), during which every thread that opens a file or a
// socket waits too: 8-20 ms each here. A down at N=500 grew the table
// twice while it observed the namespaces, idle for 16-36 ms. Grown once,
// early, while the file is parsed, the wait overlaps the parse.
//
// It blocks for that grace period: callers run it in a goroutine. Errors
// are ignored: the kernel still grows the table when needed, as before.
func GrowFileTable() {
	n := reservedFiles
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur < uint64(n) {
		n = int(lim.Cur)
	}
	// A copy of a descriptor at the lowest free number from n-1 up grows
	// the table to hold it (F_DUPFD never replaces an open descriptor, as
	// dup2 would); closing the copy leaves the table at that size.
	for fd := range 3 {
		if c, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, n-1); err == nil {
			unix.Close(c)
			return
		}
	}
}
