package iptables

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/topolab/topo/machine/nlattr"
)

// nftGeneration reads the generation id of nf_tables' ruleset in the
// process's network namespace. Every committed change to the ruleset
// increments it, whoever makes it (iptables-nft, nft, another topo): two
// equal reads mean no change was committed between them.
//
// Equivalent to: the NFT_MSG_GETGEN request that `nft monitor` and
// iptables-nft make.
func nftGeneration() (uint32, error) {
	const msgType = unix.NFNL_SUBSYS_NFTABLES << 8
	req := nl.NewNetlinkRequest(msgType|unix.NFT_MSG_GETGEN, 0)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: nl.NFNETLINK_V0})
	msgs, err := req.Execute(unix.NETLINK_NETFILTER, msgType|unix.NFT_MSG_NEWGEN)
	if err != nil {
		return 0, fmt.Errorf("nf_tables generation: %w", err)
	}
	for _, m := range msgs {
		if len(m) < nl.SizeofNfgenmsg {
			continue
		}
		var id *uint32
		err := nlattr.Each(m[nl.SizeofNfgenmsg:], func(typ uint16, v []byte) error {
			if typ == unix.NFTA_GEN_ID && len(v) == 4 {
				g := binary.BigEndian.Uint32(v)
				id = &g
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("nf_tables generation: %w", err)
		}
		if id != nil {
			return *id, nil
		}
	}
	return 0, errors.New("nf_tables generation: no answer with an id")
}
