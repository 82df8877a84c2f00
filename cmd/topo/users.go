package main

import (
	"fmt"

	"github.com/topolab/topo/privilege"
	"github.com/topolab/topo/spec"
)

// checkUsers resolves every command's user: in the host's user database,
// so that plan and up refuse, at its line, a user the host does not have,
// before any step (validate does not: the file may be meant for another
// host).
func checkUsers(f *spec.File) error {
	var errs []error
	for _, c := range f.Containers {
		if len(c.Command) == 0 || c.Privileges.User == "" {
			continue
		}
		if _, err := privilege.LookupUser(c.Privileges.User); err != nil {
			errs = append(errs, &spec.Error{Path: f.Path, Pos: c.UserPos, Msg: fmt.Sprintf("container %s: %v", c.Name, err)})
		}
	}
	return spec.Join(errs...)
}
