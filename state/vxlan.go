package state

// VXLAN is what topo reads of one of its VXLAN devices.
type VXLAN struct {
	VNI int `json:"vni"`
	// Local is the source address of its packets.
	Local string `json:"local,omitempty"`
	// Port is its UDP destination port.
	Port int `json:"port"`
	// Learning and Proxy are the device's flags: topo's learn nothing
	// and answer ARP and IPv6 neighbour solicitations from their
	// neighbour entries.
	Learning bool `json:"learning,omitempty"`
	Proxy    bool `json:"proxy,omitempty"`
	// FDB are its own forwarding entries (not the bridge's), each
	// "MAC DST" (00:00:00:00:00:00 for broadcast and unknown unicast),
	// sorted.
	FDB []string `json:"fdb,omitempty"`
	// Neigh are its neighbour entries, IPv4's (ARP) and IPv6's, each
	// "ADDR MAC", sorted.
	Neigh []string `json:"neigh,omitempty"`
}

// Clone is a copy that shares nothing with v.
func (v *VXLAN) Clone() *VXLAN {
	if v == nil {
		return nil
	}
	c := *v
	c.FDB = append([]string(nil), v.FDB...)
	c.Neigh = append([]string(nil), v.Neigh...)
	return &c
}
