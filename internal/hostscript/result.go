package hostscript

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
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
	// Inventory lists the Passport users an inventory found; Truncated is
	// set when the host had more than fit in the result line (Fields
	// "count" has the total).
	Inventory []HostUser
	Truncated bool
	// Fields holds every key=value of the line, including the above.
	Fields map[string]string
}

// HostUser is one Passport user on a host, as an inventory reports it.
type HostUser struct {
	Username string
	// ExpiresAt is the grant record's expiry; zero when there is no record.
	ExpiresAt time.Time
	HasUser   bool // the OS account exists and is in Passport's group
	HasRecord bool // the host holds a grant record for it
}

// exitMeanings say what each exit code means and what to do about it.
var exitMeanings = map[int]string{
	ExitFailed:    "a step failed unexpectedly; the host's stderr names it",
	ExitData:      "the host refused the request data and changed nothing; this is a Passport bug or tampering in transit",
	ExitHost:      "the host lacks a tool or file Passport needs; install it (the host's stderr names it) and retry",
	ExitConflict:  "the username belongs to an account Passport does not manage; it was left alone",
	ExitNotFound:  "the host has no such Passport user; provision it again",
	ExitSSHD:      "sshd's configuration on the host is invalid or overrides Passport's; Passport's change was undone, fix sshd_config and retry",
	ExitSudoers:   "visudo rejected the sudoers drop-in, which was not installed; check /etc/sudoers on the host",
	ExitLock:      "another Passport program held the host lock for two minutes; retry",
	ExitPassword:  "the host's password policy refused the generated password; the host's stderr says why (minimum length, a custom password filter); relax the policy for local accounts or retry",
	ExitRecording: "policy requires this host to record sessions and it cannot (sudo is missing, or sshd's PermitUserEnvironment is on); the host's stderr says which, nothing was changed",
	ExitUID:       "the host cannot give the new user a UID that no earlier Passport user had: the next one still owns something, or Passport's UID range is used up; the host's stderr says what to remove, nothing was changed",
}

// Error is a host program's reported failure.
type Error struct {
	Action string
	Step   string
	Code   int
}

func (e *Error) Error() string {
	meaning, ok := exitMeanings[e.Code]
	if !ok {
		meaning = "unknown exit code"
	}
	return fmt.Sprintf("hostscript: %s failed in step %s (exit %d): %s", e.Action, e.Step, e.Code, meaning)
}

// Err returns nil when r reports success, and otherwise an *Error naming
// the action, the failing step and what its exit code means.
func (r Result) Err() error {
	if r.OK {
		return nil
	}
	return &Error{Action: r.Action, Step: r.Step, Code: r.Code}
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
	r.Truncated = r.Fields["truncated"] == "yes"
	for _, entry := range list(r.Fields["accounts"]) {
		a, err := parseHostUser(entry)
		if err != nil {
			return Result{}, err
		}
		r.Inventory = append(r.Inventory, a)
	}
	return r, nil
}

// parseHostUser reads one inventory entry, name:expiry:state.
func parseHostUser(entry string) (HostUser, error) {
	parts := strings.Split(entry, ":")
	if len(parts) != 3 || validUsername(parts[0]) != nil {
		return HostUser{}, fmt.Errorf("hostscript: malformed inventory entry %q", entry)
	}
	a := HostUser{Username: parts[0]}
	switch parts[2] {
	case "live":
		a.HasUser, a.HasRecord = true, true
	case "norecord":
		a.HasUser = true
	case "nouser":
		a.HasRecord = true
	default:
		return HostUser{}, fmt.Errorf("hostscript: inventory entry %q has an unknown state", entry)
	}
	if parts[1] != "none" {
		sec, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil || sec <= 0 {
			return HostUser{}, fmt.Errorf("hostscript: inventory entry %q has a malformed expiry", entry)
		}
		a.ExpiresAt = time.Unix(sec, 0)
	}
	return a, nil
}

// list splits a comma-separated result value; "none" is the empty list.
func list(v string) []string {
	if v == "" || v == "none" {
		return nil
	}
	return strings.Split(v, ",")
}
