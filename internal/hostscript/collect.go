package hostscript

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"
)

//go:embed programs/collect.sh
var collectSource string

// Collection is what the collect program needs: whose recordings to hand
// over and which sessions Passport already stored whole.
type Collection struct {
	// Users whose recordings to hand over; none means every user with
	// recordings on the host, a removed user's included.
	Users []string
	// Prune names sessions ("<user>/<session>") Passport has stored
	// whole; the host deletes them (unless still being written) before it
	// hands over the rest. At most MaxPrune: the data block is bounded,
	// and the rest can go the next time.
	Prune []string
}

// MaxPrune bounds Collection.Prune so the data block stays within what a
// Passport document's parameter takes.
const MaxPrune = 120

// reSession is the name sudo gives a session's I/O log under Passport's
// iolog_file (%Y%m%d-%H%M%S-XXXXXX).
var reSession = regexp.MustCompile(`^(?:[0-9]{8}-[0-9]{6}-[A-Za-z0-9]{6})$`)

// ValidSession reports whether name is a session name the recorder gives.
func ValidSession(name string) bool { return reSession.MatchString(name) }

// Collect returns the program that hands over session recordings as a
// tar compressed with zstd (gzip where the host has no zstd) on stdout (which only Run Command's S3 output can
// carry) and its result line on stderr (ParseResult reads it there).
func Collect(c Collection) (string, error) {
	for _, u := range c.Users {
		if err := validUsername(u); err != nil {
			return "", err
		}
	}
	if len(c.Prune) > MaxPrune {
		return "", &FieldError{"Prune", fmt.Sprintf("holds %d sessions; at most %d go in one collection", len(c.Prune), MaxPrune)}
	}
	for _, p := range c.Prune {
		user, session, ok := strings.Cut(p, "/")
		if !ok || validUsername(user) != nil || !ValidSession(session) {
			return "", &FieldError{"Prune", fmt.Sprintf("%.60q is not <user>/<session> as the recorder names them", p)}
		}
	}
	data := encode([][2]string{
		{"action", "collect"},
		{"users", strings.Join(c.Users, ":")},
		{"prune", strings.Join(c.Prune, ":")},
	})
	return program("collect", data, linuxBody("collect")), nil
}
