package rundir

import "path/filepath"

// Containers is the folder of a project's container commands: for each,
// NAME.pid (see package daemon) and NAME.log, its stdout and stderr.
func Containers(project string) string {
	return filepath.Join(Project(project), "containers")
}

// PidFile is the pid file of a container's command.
func PidFile(project, container string) string {
	return filepath.Join(Containers(project), container+".pid")
}

// LogFile is the log of a container's command.
func LogFile(project, container string) string {
	return filepath.Join(Containers(project), container+".log")
}
