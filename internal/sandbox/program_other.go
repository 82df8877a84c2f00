//go:build !linux

package sandbox

import "errors"

// Enter fails: there is no sandbox off Linux.
func Enter() error { return errors.New("needs Linux: it works in private network namespaces") }
