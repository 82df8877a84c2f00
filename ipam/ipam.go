// Package ipam picks subnets and addresses the way Docker's default IPAM
// does: subnets from the first free block of a pool, addresses sequentially
// from the first after the gateway. It is pure: callers pass in everything
// that is already taken.
package ipam

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
)

// Pool is a range of address space carved into blocks of one size.
type Pool struct {
	Base netip.Prefix
	Size int // prefix length of each block
}

// DefaultPools are Docker's default address pools, in the order Docker
// tries them: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 in /20s.
var DefaultPools = []Pool{
	{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
	{Base: netip.MustParsePrefix("172.18.0.0/15"), Size: 16},
	{Base: netip.MustParsePrefix("172.20.0.0/14"), Size: 16},
	{Base: netip.MustParsePrefix("172.24.0.0/13"), Size: 16},
	{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20},
}

// ErrExhausted means every block of the pools overlaps something in use.
var ErrExhausted = errors.New("no free subnet left in the address pools")

// PickSubnet returns the first block of pools that overlaps nothing in used.
func PickSubnet(pools []Pool, used []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range pools {
		block := netip.PrefixFrom(pool.Base.Addr(), pool.Size)
		for pool.Base.Contains(block.Addr()) {
			if !overlapsAny(block, used) {
				return block, nil
			}
			next, ok := nextBlock(block)
			if !ok {
				break
			}
			block = next
		}
	}
	return netip.Prefix{}, fmt.Errorf("%w (set a subnet in the file)", ErrExhausted)
}

func overlapsAny(p netip.Prefix, used []netip.Prefix) bool {
	for _, u := range used {
		if p.Overlaps(u) {
			return true
		}
	}
	return false
}

// nextBlock returns the block of the same size right after p, of
// either family.
func nextBlock(p netip.Prefix) (netip.Prefix, bool) {
	if p.Addr().Is6() {
		b := p.Addr().As16()
		// Add 1 at the block's last bit, carrying towards the first.
		bit := p.Bits() - 1
		for i := bit / 8; i >= 0; i-- {
			inc := byte(1)
			if i == bit/8 {
				inc = 1 << (7 - bit%8)
			}
			old := b[i]
			b[i] += inc
			if b[i] > old {
				return netip.PrefixFrom(netip.AddrFrom16(b), p.Bits()), true
			}
		}
		return netip.Prefix{}, false
	}
	a := p.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	step := uint32(1) << (32 - p.Bits())
	if n+step < n {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(fromUint32(n+step), p.Bits()), true
}

func toUint32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromUint32(n uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// Gateway is the first host address of subnet, which Docker gives the bridge.
func Gateway(subnet netip.Prefix) netip.Addr {
	return subnet.Masked().Addr().Next()
}

// Broadcast is the last address of subnet.
func Broadcast(subnet netip.Prefix) netip.Addr {
	n := toUint32(subnet.Masked().Addr())
	return fromUint32(n | (uint32(1)<<(32-subnet.Bits()) - 1))
}

// Allocator hands out the addresses of one subnet, lowest free first.
type Allocator struct {
	subnet netip.Prefix
	// pool is where Next picks from: the subnet, or a range of it.
	pool  netip.Prefix
	taken map[netip.Addr]bool
	next  netip.Addr
}

// NewAllocator returns an allocator for subnet with the network, gateway and
// (IPv4's) broadcast addresses already taken. IPv6 has no broadcast; its
// first address is the subnet-router anycast address.
func NewAllocator(subnet netip.Prefix) *Allocator {
	subnet = subnet.Masked()
	a := &Allocator{subnet: subnet, pool: subnet, taken: map[netip.Addr]bool{}}
	a.taken[subnet.Addr()] = true
	a.taken[Gateway(subnet)] = true
	if subnet.Addr().Is4() {
		a.taken[Broadcast(subnet)] = true
	}
	a.next = Gateway(subnet).Next()
	return a
}

// Reserve marks addr as taken; it reports false when addr is outside the
// subnet or already taken.
func (a *Allocator) Reserve(addr netip.Addr) bool {
	if !a.subnet.Contains(addr) || a.taken[addr] {
		return false
	}
	a.taken[addr] = true
	return true
}

// Limit makes Next pick from r, a block of the subnet, as Docker's
// ip_range does; Reserve still takes any address of the subnet.
func (a *Allocator) Limit(r netip.Prefix) {
	a.pool = r.Masked()
	if a.next.Less(a.pool.Addr()) {
		a.next = a.pool.Addr()
	}
}

// Next returns the lowest free address and takes it.
func (a *Allocator) Next() (netip.Addr, error) {
	for addr := a.next; a.subnet.Contains(addr) && a.pool.Contains(addr); addr = addr.Next() {
		if !a.taken[addr] {
			a.taken[addr] = true
			a.next = addr.Next()
			return addr, nil
		}
	}
	if a.pool != a.subnet {
		return netip.Addr{}, fmt.Errorf("ip_range %s of subnet %s has no free address left", a.pool, a.subnet)
	}
	return netip.Addr{}, fmt.Errorf("subnet %s has no free address left", a.subnet)
}

// SetGateway makes gw the gateway instead of the subnet's first address,
// which is then free: a gateway topo does not hold (a LAN's router).
func (a *Allocator) SetGateway(gw netip.Addr) {
	first := Gateway(a.subnet)
	if gw == first {
		return
	}
	delete(a.taken, first)
	a.taken[gw] = true
	if first.Less(a.next) && a.pool.Contains(first) {
		a.next = first
	}
}

// Last returns the highest free address of the pool and takes it: the
// address of something that must not meet the containers' sequential
// picks (a host's own link on the network).
func (a *Allocator) Last() (netip.Addr, error) {
	for addr := Broadcast(a.pool); a.pool.Contains(addr); addr = addr.Prev() {
		if a.subnet.Contains(addr) && !a.taken[addr] {
			a.taken[addr] = true
			return addr, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("%s has no free address left", a.pool)
}

// ULA is the host's unique local IPv6 prefix (RFC 4193), a /48 whose 40
// bits of global ID are pseudo-random and stable: derived from the
// host's machine ID (/etc/machine-id), keyed so that the prefix does not
// reveal it, as systemd's sd_id128_get_machine_app_specific derives IDs
// for one application. Automatic IPv6 subnets are /64s of it. A host
// without a machine ID gets the prefix of the empty one.
func ULA(machineID string) netip.Prefix {
	mac := hmac.New(sha256.New, []byte(machineID))
	mac.Write([]byte("topo ULA global ID"))
	sum := mac.Sum(nil)
	var b [16]byte
	b[0] = 0xfd // the locally assigned half of fc00::/7
	copy(b[1:6], sum[:5])
	return netip.PrefixFrom(netip.AddrFrom16(b), 48)
}

// ULAPools is the pool automatic IPv6 subnets come from: the /64s of
// the host's ULA prefix.
func ULAPools(machineID string) []Pool {
	return []Pool{{Base: ULA(machineID), Size: 64}}
}

// OverlayULA is the automatic IPv6 subnet of an overlay network: a /64
// of fd00::/8 whose 56 bits of global and subnet ID are a hash of
// project and network. Every host of the file must derive the same
// subnet from the file alone, so the host's own ULA prefix, from its
// machine ID, cannot be used.
func OverlayULA(project, network string) netip.Prefix {
	sum := sha256.Sum256([]byte("topo overlay ULA/" + project + "/" + network))
	var b [16]byte
	b[0] = 0xfd
	copy(b[1:8], sum[:7])
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}
