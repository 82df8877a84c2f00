package state

// UTS is a UTS namespace of the project's, kept at Path (see
// names.Runtime.UTS) for the network namespace NS, with the names it
// holds. Mounted is false for a file at Path that holds no namespace (an
// up cut short between the two).
type UTS struct {
	NS         string `json:"netns"`
	Path       string `json:"path"`
	Hostname   string `json:"hostname,omitempty"`
	Domainname string `json:"domainname,omitempty"`
	Mounted    bool   `json:"mounted"`
}

// UTSOf is the observed UTS namespace at path, or nil.
func (s *Snapshot) UTSOf(path string) *UTS {
	for i := range s.UTS {
		if s.UTS[i].Path == path {
			return &s.UTS[i]
		}
	}
	return nil
}
