//go:build !linux

package linux

import (
	"context"
	"errors"

	"github.com/topolab/topo/machine"
	"github.com/topolab/topo/names"
)

// Options are how the machine is set up.
type Options struct {
	Runtime  names.Runtime
	Prefetch bool
}

// New fails off Linux: topo's machine is Linux's.
func New(context.Context, Options) (*machine.Mechanisms, error) {
	return nil, errors.New("topo needs Linux")
}

// GrowFileTable does nothing off Linux.
func GrowFileTable() {}
