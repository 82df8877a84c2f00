package resolver

import (
	"encoding/binary"
	"math/rand/v2"
)

// Wire-format constants of the fast path (RFC 1035 §4.1, RFC 6891 §6.1).
const (
	headerLen = 12
	typeA     = 1
	typeOPT   = 41
	classIN   = 1
	aRecLen   = 16 // pointer to the question's name, type, class, TTL, length, address
	optLen    = 11
	maxFast   = 64 // holders of one name the fast path shuffles on the stack
)

// fast answers, straight from and into wire format, the query that nearly
// every asker sends: a standard query with one question, class IN, type A,
// for a name the asker's networks hold, with no record but an EDNS0 OPT.
// It returns nil for anything else (or an answer that would not fit), which
// then takes the general path through miekg/dns. It allocates nothing: at
// the rates a resolver sees, unpacking and packing a message per query cost
// more than the lookup itself (BenchmarkPacket).
func (h *Handler) fast(in, out []byte) []byte {
	if len(in) < headerLen+5 {
		return nil
	}
	// QR=0, opcode QUERY; one question, no answer or authority records.
	if in[2]&0xF8 != 0 || binary.BigEndian.Uint16(in[4:]) != 1 ||
		binary.BigEndian.Uint16(in[6:]) != 0 || binary.BigEndian.Uint16(in[8:]) != 0 {
		return nil
	}
	arcount := binary.BigEndian.Uint16(in[10:])
	if arcount > 1 {
		return nil
	}
	// The name, lower-cased, without its final dot; no compression.
	var nameBuf [255]byte
	name := nameBuf[:0]
	i := headerLen
	for {
		if i >= len(in) {
			return nil
		}
		l := int(in[i])
		i++
		if l == 0 {
			break
		}
		if l > 63 || i+l > len(in) || len(name)+l+1 > len(nameBuf) {
			return nil
		}
		if len(name) > 0 {
			name = append(name, '.')
		}
		for _, c := range in[i : i+l] {
			if c == '.' {
				return nil // a dot inside a label is not a name the store holds
			}
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			name = append(name, c)
		}
		i += l
	}
	if i+4 > len(in) || binary.BigEndian.Uint16(in[i:]) != typeA || binary.BigEndian.Uint16(in[i+2:]) != classIN {
		return nil
	}
	qend := i + 4
	limit := 512
	do := false
	if arcount == 1 {
		// Only an OPT of version 0, owned by the root, ending the packet.
		o := in[qend:]
		if len(o) < optLen || o[0] != 0 || binary.BigEndian.Uint16(o[1:]) != typeOPT || o[6] != 0 ||
			int(binary.BigEndian.Uint16(o[9:]))+optLen != len(o) {
			return nil
		}
		limit = max(limit, min(int(binary.BigEndian.Uint16(o[3:])), maxUDPSize))
		do = o[7]&0x80 != 0
	} else if qend != len(in) {
		return nil
	}

	a := h.Store.Load().askers[h.NS]
	if a == nil {
		return nil
	}
	var addrs [maxFast][4]byte
	n := 0
	for _, ix := range a.nets {
		for _, x := range ix.byName[string(name)] { // no allocation: map index by converted bytes
			b := x.As4()
			dup := false
			for _, y := range addrs[:n] {
				dup = dup || y == b
			}
			if dup {
				continue
			}
			if n == maxFast {
				return nil
			}
			addrs[n] = b
			n++
		}
	}
	if n == 0 {
		return nil // unknown here, or only as NAME.NETWORK: the general path knows
	}
	size := qend + n*aRecLen
	if arcount == 1 {
		size += optLen
	}
	if size > limit || size > len(out) {
		return nil // to truncate: the general path does it
	}

	// Round-robin: each answer lists the holders in a new order.
	for k := n - 1; k > 0; k-- {
		j := rand.IntN(k + 1)
		addrs[k], addrs[j] = addrs[j], addrs[k]
	}
	r := out[:size]
	copy(r, in[:qend])              // ID and the question as asked
	r[2] = 0x80 | 0x04 | in[2]&0x01 // QR, AA, the asker's RD
	r[3] = 0x80 | in[3]&0x10        // RA, the asker's CD (RFC 4035 §3.2.2), NOERROR
	binary.BigEndian.PutUint16(r[6:], uint16(n))
	binary.BigEndian.PutUint16(r[8:], 0)
	binary.BigEndian.PutUint16(r[10:], arcount)
	p := qend
	for _, b := range addrs[:n] {
		r[p], r[p+1] = 0xC0, headerLen // the name is the question's
		binary.BigEndian.PutUint16(r[p+2:], typeA)
		binary.BigEndian.PutUint16(r[p+4:], classIN)
		binary.BigEndian.PutUint32(r[p+6:], TTL)
		binary.BigEndian.PutUint16(r[p+10:], 4)
		copy(r[p+12:], b[:])
		p += aRecLen
	}
	if arcount == 1 {
		r[p] = 0
		binary.BigEndian.PutUint16(r[p+1:], typeOPT)
		binary.BigEndian.PutUint16(r[p+3:], maxUDPSize)
		r[p+5], r[p+6], r[p+7], r[p+8] = 0, 0, 0, 0
		if do {
			r[p+7] = 0x80
		}
		binary.BigEndian.PutUint16(r[p+9:], 0)
	}
	return r
}
