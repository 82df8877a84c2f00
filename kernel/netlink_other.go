//go:build !linux

package kernel

import "errors"

// New fails off Linux: topo's kernel is Linux's.
func New() (Kernel, error) { return nil, errors.New("topo needs Linux") }

// GrowFileTable does nothing off Linux.
func GrowFileTable() {}
