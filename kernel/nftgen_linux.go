package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

const sizeofNfgenmsg = int(unsafe.Sizeof(unix.Nfgenmsg{}))

// nftGeneration reads the generation id of nf_tables' ruleset in the
// process's network namespace. Every committed change to the ruleset
// increments it, whoever makes it (iptables-nft, nft, another topo): two
// equal reads mean no change was committed between them.
//
// Equivalent to: the NFT_MSG_GETGEN request that `nft monitor` and
// iptables-nft make.
func nftGeneration() (uint32, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	defer unix.Close(fd)
	// The kernel answers at once; the timeout only keeps a broken answer
	// from hanging the command.
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1}); err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	const hdrLen = unix.SizeofNlMsghdr + sizeofNfgenmsg
	req := make([]byte, hdrLen)
	*(*unix.NlMsghdr)(unsafe.Pointer(&req[0])) = unix.NlMsghdr{
		Len:   uint32(hdrLen),
		Type:  unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN,
		Flags: unix.NLM_F_REQUEST,
		Seq:   1,
	}
	*(*unix.Nfgenmsg)(unsafe.Pointer(&req[unix.SizeofNlMsghdr])) = unix.Nfgenmsg{Nfgen_family: unix.AF_UNSPEC, Version: unix.NFNETLINK_V0}
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("nf_tables generation: %w", err)
		}
		for b := buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			h := (*unix.NlMsghdr)(unsafe.Pointer(&b[0]))
			l := int(h.Len)
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return 0, fmt.Errorf("nf_tables generation: malformed netlink message (length %d of %d bytes)", l, len(b))
			}
			data := b[unix.SizeofNlMsghdr:l]
			b = b[min(nlmAlign(l), len(b)):]
			switch {
			case h.Seq != 1:
				continue
			case h.Type == unix.NLMSG_ERROR:
				if len(data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(data)); errno != 0 {
						return 0, fmt.Errorf("nf_tables generation: %w", unix.Errno(-errno))
					}
				}
				return 0, errors.New("nf_tables generation: no answer")
			case h.Type == unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWGEN && len(data) >= sizeofNfgenmsg:
				var id *uint32
				err := eachAttr(data[sizeofNfgenmsg:], func(typ uint16, v []byte) error {
					if typ == unix.NFTA_GEN_ID && len(v) == 4 {
						g := binary.BigEndian.Uint32(v)
						id = &g
					}
					return nil
				})
				if err != nil {
					return 0, fmt.Errorf("nf_tables generation: %w", err)
				}
				if id == nil {
					return 0, errors.New("nf_tables generation: answer without an id")
				}
				return *id, nil
			}
		}
	}
}
