package view

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/topolab/topo/op"
	"github.com/topolab/topo/planner"
)

// PlanView shows a plan: as the commands it runs and a summary, or as
// JSON.
type PlanView interface {
	Plan(p *planner.Plan) error
}

// NewPlanView is the human view on w, or with asJSON the JSON one.
func NewPlanView(w io.Writer, asJSON bool) PlanView {
	if asJSON {
		return planJSON{w}
	}
	return planHuman{w}
}

type planHuman struct{ w io.Writer }

// Plan writes one line per step, then the summary, as Terraform words it.
func (v planHuman) Plan(p *planner.Plan) error {
	if p.Empty() {
		_, err := fmt.Fprintf(v.w, "No changes. Project %s matches the file.\n", p.Project)
		return err
	}
	if _, err := fmt.Fprintf(v.w, "Project %s: topo will run these steps:\n\n", p.Project); err != nil {
		return err
	}
	for _, s := range p.Steps {
		if _, err := fmt.Fprintf(v.w, "  %s\n", s); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(v.w, "\n%s\n", p.Summary())
	return err
}

// PlanFormatVersion is the version of the JSON plan's shape; it changes
// only when a field changes meaning or goes away.
const PlanFormatVersion = "1"

// jsonPlan is the documented JSON shape of a plan.
type jsonPlan struct {
	FormatVersion string          `json:"format_version"`
	Project       string          `json:"project"`
	Steps         []op.Listed     `json:"steps"`
	Summary       planner.Summary `json:"summary"`
}

type planJSON struct{ w io.Writer }

// Plan writes the plan as indented JSON with a trailing newline.
func (v planJSON) Plan(p *planner.Plan) error {
	jp := jsonPlan{FormatVersion: PlanFormatVersion, Project: p.Project, Steps: []op.Listed{}, Summary: p.Summary()}
	for _, s := range p.Steps {
		jp.Steps = append(jp.Steps, op.Listed{Step: s})
	}
	b, err := json.MarshalIndent(jp, "", "  ")
	if err != nil {
		return err
	}
	_, err = v.w.Write(append(b, '\n'))
	return err
}
