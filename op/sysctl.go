package op

// SysctlReset gives a sysctl of namespace NS the value a new namespace
// has: the undo of a key topo sets in a namespace it made, which had
// that value before.
type SysctlReset struct{ NS, Key string }

func (SysctlReset) Name() string { return "sysctl-reset" }

// Command: `ip netns exec NS sysctl -w KEY="$(unshare -n sysctl -n KEY)"`.
func (o SysctlReset) Command() string {
	return "ip netns exec " + o.NS + " sysctl -w " + o.Key + `="$(unshare -n sysctl -n ` + o.Key + `)"`
}

func init() {
	register("sysctl-reset", func(w *wire) (Operation, error) { return SysctlReset{NS: w.NS, Key: w.Key}, nil })
}

func (o SysctlReset) fill(w *wire) { w.NS, w.Key = o.NS, o.Key }
