package view

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Project states, as topo ls shows them.
const (
	// ProjectRunning: the kernel matches the project's last up (plan
	// would be empty).
	ProjectRunning = "running"
	// ProjectPartly: something of it is up, but not all of it, or not
	// as its last up left it (a command stopped or dead, a link deleted).
	ProjectPartly = "partly up"
	// ProjectInterrupted: an up or down was cut short; the next up or
	// down undoes it first.
	ProjectInterrupted = "interrupted"
)

// LS is what `topo ls --format json` prints.
type LS struct {
	FormatVersion string    `json:"format_version"`
	Projects      []Project `json:"projects"`
}

// Project is one line of ls.
type Project struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// ContainersUp are the containers whose namespace is up (for
	// network_mode host, whose command runs); Containers, the project's
	// containers as its last up recorded them, or ContainersUp without a
	// record.
	ContainersUp int `json:"containers_up"`
	Containers   int `json:"containers"`
	// Networks are the networks whose bridge is up.
	Networks []string `json:"networks"`
	// Files are the files of its last up; empty without a record (a
	// project of an earlier topo).
	Files []string `json:"files"`
}

// Render writes ls as a table, as docker compose ls does.
func (l *LS) Render(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tCONTAINERS\tNETWORKS\tFILE")
	for _, p := range l.Projects {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", p.Name, p.State, p.ContainersUp, p.Containers,
			dash(strings.Join(p.Networks, ","), "-"), dash(strings.Join(p.Files, ","), "-"))
	}
	return tw.Flush()
}
