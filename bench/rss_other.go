//go:build !linux

package main

import "os"

// maxRSS is unknown off Linux; the benchmark only runs there.
func maxRSS(*os.ProcessState) int64 { return 0 }
