package sandbox

import (
	"errors"
	"fmt"
	"os"
)

// Enter is Main for programs that are not tests, such as the benchmark: it
// makes the rest of main run inside a fresh sandbox. As root, outside a
// sandbox, it re-executes the program with the same arguments as PID 1 of
// new network, mount and PID namespaces, set up as Main's, and exits with
// the child's status. In that child it sets the sandbox up and returns nil,
// so main goes on there. Without root it returns an error and the program
// must not touch the kernel.
func Enter() error {
	if inside() {
		if err := setup(); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		return nil
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it works in private network namespaces it makes itself (run it with sudo)")
	}
	os.Exit(reexec())
	return nil
}
