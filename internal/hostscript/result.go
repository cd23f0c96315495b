package hostscript

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Result is what a host program reported in its final line.
type Result struct {
	Action string // provision, extend, revoke or sweep
	OK     bool
	// Code is the program's exit code on failure (one of the Exit
	// constants), and Step the step that failed; stderr has the details.
	Code int
	Step string
	// User is the user the program acted on (not for sweep).
	User string
	// Changed lists what provision or extend changed on the host, e.g.
	// user, principals, sudoers, sshd-dropin; empty when nothing changed.
	Changed []string
	// Removed lists the users a sweep removed (at most the first 40).
	Removed []string
	// Fields holds every key=value of the line, including the above.
	Fields map[string]string
}

// ErrNoResult means the output held no result line: the script did not run
// to its end (killed, timed out) or its output was truncated.
var ErrNoResult = errors.New("hostscript: the output has no passport-result line")

var reResultToken = regexp.MustCompile(`^[a-z_]+=[A-Za-z0-9._@+:,-]*$`)

// ParseResult reads the result line from a host program's standard output:
// the last line starting with "passport-result ".
func ParseResult(stdout string) (Result, error) {
	var line string
	for _, l := range strings.Split(strings.TrimRight(stdout, "\r\n"), "\n") {
		if strings.HasPrefix(l, resultPrefix) {
			line = strings.TrimSpace(strings.TrimPrefix(l, resultPrefix))
		}
	}
	if line == "" {
		return Result{}, ErrNoResult
	}
	r := Result{Fields: make(map[string]string)}
	for _, tok := range strings.Fields(line) {
		if !reResultToken.MatchString(tok) {
			return Result{}, fmt.Errorf("hostscript: malformed result token %q", tok)
		}
		k, v, _ := strings.Cut(tok, "=")
		r.Fields[k] = v
	}
	r.Action, r.User, r.Step = r.Fields["action"], r.Fields["user"], r.Fields["step"]
	switch r.Fields["status"] {
	case "ok":
		r.OK = true
	case "error":
		code, err := strconv.Atoi(r.Fields["code"])
		if err != nil || code <= 0 {
			return Result{}, fmt.Errorf("hostscript: result has status=error without an exit code: %q", line)
		}
		r.Code = code
	default:
		return Result{}, fmt.Errorf("hostscript: result has no valid status: %q", line)
	}
	if r.Action == "" {
		return Result{}, fmt.Errorf("hostscript: result names no action: %q", line)
	}
	r.Changed = list(r.Fields["changed"])
	r.Removed = list(r.Fields["users"])
	return r, nil
}

// list splits a comma-separated result value; "none" is the empty list.
func list(v string) []string {
	if v == "" || v == "none" {
		return nil
	}
	return strings.Split(v, ",")
}
