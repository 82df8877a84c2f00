// Package nlattr reads netlink attributes straight from a message's bytes,
// for the mechanisms' own dumps (see machine/links): faster than decoding
// every attribute into the library's types.
package nlattr

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Each calls fn with the type (without its flags) and value of each
// attribute in b, in order, until fn fails.
func Each(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if n < unix.SizeofRtAttr || n > len(b) {
			return fmt.Errorf("malformed netlink attribute (length %d of %d bytes)", n, len(b))
		}
		if err := fn(typ, b[unix.SizeofRtAttr:n]); err != nil {
			return err
		}
		b = b[min(align(n), len(b)):]
	}
	return nil
}

func align(n int) int { return (n + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1) }

// CString is a netlink string attribute, without its terminating NUL.
func CString(v []byte) string {
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}
