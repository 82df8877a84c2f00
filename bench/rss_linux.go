package main

import (
	"os"
	"syscall"
)

// maxRSS is the peak resident set, in KiB, of the largest process among a
// finished command and the descendants it waited for (wait4's rusage).
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}
