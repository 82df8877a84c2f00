package planner

import (
	"encoding/json"
	"fmt"
	"io"
)

// Plan is the ordered list of steps that brings one project to the file's
// state. It is plain data: the applier runs exactly these steps.
type Plan struct {
	Project string `json:"project"`
	Steps   []Step `json:"steps"`
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
		if st.Op == OpFirewall {
			// A firewall step counts its rules and chains, one per line.
			for _, c := range st.Rules {
				switch {
				case c.Adds():
					s.Add++
				case c.Op == "-F":
					s.Destroy += len(c.Flushed)
				default:
					s.Destroy++
				}
			}
			continue
		}
		switch st.Action {
		case Create:
			s.Add++
		case Change:
			s.Change++
		case Destroy:
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

// Render writes the human plan: one line per step, then the summary.
func (p *Plan) Render(w io.Writer) error {
	if p.Empty() {
		_, err := fmt.Fprintf(w, "No changes. Project %s matches the file.\n", p.Project)
		return err
	}
	if _, err := fmt.Fprintf(w, "Project %s: topo will run these steps:\n\n", p.Project); err != nil {
		return err
	}
	for _, s := range p.Steps {
		if _, err := fmt.Fprintf(w, "  %s\n", s); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\n%s\n", p.Summary())
	return err
}

// jsonPlan is the documented JSON shape of a plan.
type jsonPlan struct {
	FormatVersion string  `json:"format_version"`
	Project       string  `json:"project"`
	Steps         []jStep `json:"steps"`
	Summary       Summary `json:"summary"`
}

type jStep struct {
	Command string `json:"command"`
	Step
}

// FormatVersion is the version of the JSON plan's shape; it changes only
// when a field changes meaning or goes away.
const FormatVersion = "1"

// RenderJSON writes the plan as indented JSON with a trailing newline.
func (p *Plan) RenderJSON(w io.Writer) error {
	jp := jsonPlan{FormatVersion: FormatVersion, Project: p.Project, Steps: []jStep{}, Summary: p.Summary()}
	for _, s := range p.Steps {
		jp.Steps = append(jp.Steps, jStep{Command: s.Command(), Step: s})
	}
	b, err := json.MarshalIndent(jp, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
