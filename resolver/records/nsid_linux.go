package records

import "golang.org/x/sys/unix"

// NamespaceIDOf is the identity of the namespace at path (/run/netns/NAME),
// to compare with a Status.
func NamespaceIDOf(path string) (NamespaceID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return NamespaceID{}, err
	}
	return NamespaceID{Dev: st.Dev, Ino: st.Ino}, nil
}
