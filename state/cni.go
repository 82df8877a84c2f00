package state

// CNIAttachment is one attachment of a container to a CNI network, as
// libcni's cache (in the project's runtime folder) records its ADD, and
// as the chain's CHECK finds it now.
type CNIAttachment struct {
	// Network is the chain's name: the file's network.
	Network string `json:"network"`
	// ID is the container ID the chain was run with: the container's
	// namespace.
	ID     string `json:"id"`
	IfName string `json:"ifname"`
	// NetNS is the namespace's path the chain was given.
	NetNS string `json:"netns,omitempty"`
	// Config is the conflist the ADD ran, which its DEL runs again.
	Config string `json:"config"`
	// Addrs are the result's addresses of the container's interface
	// (CIDR, host part kept), in the result's order; Gateways their
	// gateways, "" where none.
	Addrs    []string `json:"addrs,omitempty"`
	Gateways []string `json:"gateways,omitempty"`
	// MAC is the result's hardware address of the interface.
	MAC string `json:"mac,omitempty"`
	// Check is why the chain's CHECK failed ("" when it passed): the
	// attachment drifted from its result.
	Check string `json:"check,omitempty"`
}

// CNIAttachment returns the attachment to network of the container whose
// ID (namespace) is id on ifname, or nil.
func (s *Snapshot) CNIAttachment(network, id, ifname string) *CNIAttachment {
	for i, a := range s.CNI {
		if a.Network == network && a.ID == id && a.IfName == ifname {
			return &s.CNI[i]
		}
	}
	return nil
}
