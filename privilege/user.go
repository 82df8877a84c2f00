package privilege

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
	"strings"
)

// User is a user: value resolved: the ids a command runs with and its
// HOME.
type User struct {
	UID, GID uint32
	// Groups are the supplementary groups: those the host's group
	// database lists the user in, as login gives them.
	Groups []uint32
	Home   string
}

// LookupUser resolves a user: value (see ParseUser; "" is root) in the
// host's user and group databases (/etc/passwd, /etc/group), as Docker
// resolves it in its image's: a name must be there; a uid that is not
// runs with gid 0 (unless the value gives one), no supplementary groups
// and HOME=/.
func LookupUser(spec string) (User, error) {
	if spec == "" {
		spec = "0"
	}
	if msg := ParseUser(spec); msg != "" {
		return User{}, fmt.Errorf("user %q %s", spec, msg)
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	out := User{Home: "/"}
	var u *user.User
	var err error
	if isNumber(name) {
		out.UID = uint32(parseID(name))
		u, err = user.LookupId(name)
		if errors.As(err, new(user.UnknownUserIdError)) {
			u, err = nil, nil
		}
	} else {
		u, err = user.Lookup(name)
		if errors.As(err, new(user.UnknownUserError)) {
			return User{}, fmt.Errorf("user %q: no such user in the host's /etc/passwd: create it (useradd), or give a uid", name)
		}
	}
	if err != nil {
		return User{}, fmt.Errorf("user %q: %w", name, err)
	}
	if u != nil {
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		out.UID, out.GID = uint32(uid), uint32(gid)
		if u.HomeDir != "" {
			out.Home = u.HomeDir
		}
		ids, err := u.GroupIds()
		if err != nil {
			return User{}, fmt.Errorf("user %q: its groups: %w", name, err)
		}
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				out.Groups = append(out.Groups, uint32(g))
			}
		}
	}
	if hasGroup {
		if isNumber(group) {
			out.GID = uint32(parseID(group))
		} else {
			g, err := user.LookupGroup(group)
			if errors.As(err, new(user.UnknownGroupError)) {
				return User{}, fmt.Errorf("user %q: no such group %q in the host's /etc/group: create it (groupadd), or give a gid", spec, group)
			}
			if err != nil {
				return User{}, fmt.Errorf("user %q: group %q: %w", spec, group, err)
			}
			gid, _ := strconv.ParseUint(g.Gid, 10, 32)
			out.GID = uint32(gid)
		}
	}
	return out, nil
}
