package planner

import (
	"fmt"

	"github.com/topolab/topo/firewall"
	"github.com/topolab/topo/op"
)

// Plan is the ordered list of steps that brings one project to the file's
// state. It is plain data: the applier runs exactly these steps.
type Plan struct {
	Project string    `json:"project"`
	Steps   []op.Step `json:"steps"`
}

// Summary counts a plan's steps by action.
type Summary struct {
	Add     int `json:"add"`
	Change  int `json:"change"`
	Destroy int `json:"destroy"`
}

// Summary counts the plan's steps by action.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, st := range p.Steps {
		if fb, ok := st.Op.(op.FirewallBatch); ok {
			// A firewall step counts its rules and chains, one per line.
			for _, c := range fb.Changes {
				switch {
				case c.Adds():
					s.Add++
				case c.Op == firewall.Flush:
					s.Destroy += len(c.Flushed)
				default:
					s.Destroy++
				}
			}
			continue
		}
		switch st.Action {
		case op.Create:
			s.Add++
		case op.Change:
			s.Change++
		case op.Destroy:
			s.Destroy++
		}
	}
	return s
}

// Empty reports whether the kernel already matches.
func (p *Plan) Empty() bool { return len(p.Steps) == 0 }

// String is the summary line, as Terraform words it.
func (s Summary) String() string {
	return fmt.Sprintf("Plan: %d to add, %d to change, %d to destroy.", s.Add, s.Change, s.Destroy)
}
