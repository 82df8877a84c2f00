//go:build !linux

package resolver

import (
	"errors"
	"log"
)

// Run fails off Linux: the resolver listens inside Linux network namespaces.
func Run(dir string, up Upstream, logger *log.Logger) error {
	return errors.New("the DNS resolver needs Linux")
}
