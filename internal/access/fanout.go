package access

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// executionTimeout bounds one host program. Provision may wait up to two
// minutes for another Passport program's host lock; the rest takes seconds.
const executionTimeout = 3 * time.Minute

// hostRun is what one host did with a host program.
type hostRun struct {
	id string
	ok bool
	// code is the program's exit code when it ran to its end, else -1.
	code int
	// sent is false when the host was never handed the script.
	sent bool
	// gone is set when SSM no longer knows the instance at all.
	gone   bool
	result hostscript.Result
	// why says in plain words, naming the host, what went wrong.
	why string
}

// untouched reports whether the host certainly changed nothing: it was
// never sent the script, or the program refused before its first change.
// A conflict belongs here above all: the name there is someone else's, and
// an undo would remove it.
func (h hostRun) untouched() bool {
	if !h.sent {
		return true
	}
	switch h.code {
	case hostscript.ExitData, hostscript.ExitConflict, hostscript.ExitLock:
		return true
	}
	return false
}

// run sends one host program to targets in one fan-out bounded by the
// service's timeout, and reads what each host did. The error is for when
// no host could be tried at all.
func (s *Service) run(ctx context.Context, action, grantID, username, script string, targets []string) ([]hostRun, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	results, err := s.fleet.Run(ctx, fleet.Job{
		Targets:          targets,
		Script:           script,
		Comment:          "Passport " + action + " " + grantID,
		ExecutionTimeout: executionTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("%s of %s could not start: %w", action, grantID, err)
	}
	runs := make([]hostRun, len(results))
	for i, r := range results {
		runs[i] = readRun(action, username, r)
	}
	return runs, nil
}

// readRun turns a fleet result into a hostRun. A program that exits 0 but
// prints no result line for this action and user did not do its job, or is
// not ours: it counts as a failure.
func readRun(action, username string, r fleet.Result) hostRun {
	h := hostRun{id: r.InstanceID, code: r.ExitCode, why: r.Reason}
	if h.why == "" {
		h.why = fmt.Sprintf("%s: %s", r.InstanceID, r.Outcome)
	}
	switch r.Outcome {
	case fleet.UnknownInstance:
		h.gone = true
		return h
	case fleet.Offline, fleet.Undeliverable, fleet.DeliveryTimedOut:
		return h
	}
	h.sent = true
	res, err := hostscript.ParseResult(r.Stdout)
	if err == nil {
		h.result = res
	}
	if r.Outcome != fleet.Success {
		if r.Outcome == fleet.Failed && h.code == hostscript.ExitConflict {
			h.why = fmt.Sprintf("%s: a user named %s already exists there and is not this request's; it was left alone", r.InstanceID, username)
		}
		return h
	}
	switch {
	case err != nil:
		h.why = fmt.Sprintf("%s: the %s program ended without reporting a result; its output may have been cut short: run the request again", r.InstanceID, action)
	case res.Action != action || !res.OK || (res.User != "" && res.User != username):
		h.why = fmt.Sprintf("%s: the host reported a result that is not a successful %s of user %s", r.InstanceID, action, username)
	default:
		h.ok = true
		h.why = ""
	}
	return h
}

// failures returns the hosts that did not succeed.
func failures(runs []hostRun) []hostRun {
	var out []hostRun
	for _, h := range runs {
		if !h.ok {
			out = append(out, h)
		}
	}
	return out
}

// listing writes one line per host, for an error.
func listing(runs []hostRun) string {
	var b strings.Builder
	for _, h := range runs {
		b.WriteString("\n  - " + h.why)
	}
	return b.String()
}

// inventory asks SSM about targets and refuses, before any host is touched,
// when one is unknown, offline or not Linux, naming each.
func (s *Service) inventory(ctx context.Context, targets []string) (map[string]fleet.Target, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	inv, err := s.fleet.Inventory(ctx, targets)
	if err != nil {
		return nil, err
	}
	var bad []string
	for _, id := range targets {
		t := inv[id]
		switch {
		case t.Unreachable() != "":
			bad = append(bad, t.Unreachable())
		case t.PlatformType != "Linux":
			bad = append(bad, fmt.Sprintf("%s: is a %s node; Passport grants SSH access to Linux nodes only: remove it from targets", id, t.PlatformType))
		}
	}
	if len(bad) > 0 {
		return nil, errors.New("no host was touched: " + plural(len(bad), "target") + " cannot take access now:\n  - " + strings.Join(bad, "\n  - "))
	}
	return inv, nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// ids returns the instance ids of targets with the given status.
func ids(targets []Target, status TargetStatus) []string {
	var out []string
	for _, t := range targets {
		if t.Status == status {
			out = append(out, t.InstanceID)
		}
	}
	return out
}
