package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
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
	gone bool
	// windows is set for a Windows host, whose programs refuse with
	// ExitHost (a domain controller) before their first change.
	windows bool
	result  hostscript.Result
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
	case hostscript.ExitData, hostscript.ExitConflict, hostscript.ExitLock, hostscript.ExitUID, hostscript.ExitRecording:
		return true
	case hostscript.ExitHost, hostscript.ExitPassword:
		// On Windows both come before any change: the role check is the
		// programs' first step, and the password is set as the user is
		// made. On Linux ExitHost may follow changes, which undo removes.
		return h.windows
	}
	return false
}

// Platforms Passport grants access on, as SSM reports them.
const (
	Linux   = "Linux"
	Windows = "Windows"
)

// programs is one operation's host program for each platform: POSIX sh
// through AWS-RunShellScript, PowerShell through AWS-RunPowerShellScript.
// windows is empty when no Windows target takes part.
type programs struct {
	linux, windows string
}

// isWindows reports whether platform is Windows; anything else, and the
// empty platform of records made before Windows targets, is Linux.
func isWindows(platform string) bool { return platform == Windows }

// run sends each of targets the program of its platform (platform tells
// which), in one fan-out per platform, side by side, bounded by the
// service's timeout, and reads what each host did, in targets' order. The
// error is for when no host could be tried at all.
func (s *Service) run(ctx context.Context, action, grantID, username string, p programs, targets []string, platform func(string) string) ([]hostRun, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var linux, windows []string
	for _, id := range targets {
		if isWindows(platform(id)) {
			windows = append(windows, id)
		} else {
			linux = append(linux, id)
		}
	}
	if len(windows) > 0 && p.windows == "" {
		return nil, fmt.Errorf("%s of %s: no Windows program for %s; this is a bug in Passport", action, grantID, strings.Join(windows, ", "))
	}
	jobs := []fleet.Job{
		{Targets: linux, Document: fleet.ShellScript, Script: p.linux},
		{Targets: windows, Document: fleet.PowerShellScript, Script: p.windows},
	}
	for i, platform := range []string{Linux, Windows} {
		if len(jobs[i].Targets) > 0 && s.docs != nil {
			if err := s.throughDocument(&jobs[i], platform); err != nil {
				return nil, fmt.Errorf("%s of %s: %w", action, grantID, err)
			}
		}
	}
	results := make([][]fleet.Result, len(jobs))
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		if len(job.Targets) == 0 {
			continue
		}
		job.Comment = "Passport " + action + " " + grantID
		job.ExecutionTimeout = executionTimeout
		wg.Go(func() { results[i], errs[i] = s.fleet.Run(ctx, job) })
	}
	wg.Wait()
	byID := make(map[string]hostRun, len(targets))
	for i, rs := range results {
		if errs[i] != nil {
			// One platform's fan-out failing to start must not hide what
			// the other did: its hosts are reported as never sent.
			for _, id := range jobs[i].Targets {
				byID[id] = hostRun{id: id, code: -1, why: fmt.Sprintf("%s: %s could not start: %v", id, action, errs[i])}
			}
			continue
		}
		for _, r := range rs {
			h := readRun(action, username, r)
			h.windows = i == 1
			byID[r.InstanceID] = h
		}
	}
	started := false
	for i, job := range jobs {
		started = started || len(job.Targets) > 0 && errs[i] == nil
	}
	if !started {
		return nil, classed(Unavailable, fmt.Errorf("%s of %s could not start: %w", action, grantID, errors.Join(errs...)))
	}
	runs := make([]hostRun, len(targets))
	for i, id := range targets {
		runs[i] = byID[id]
	}
	return runs, nil
}

// throughDocument makes job send its script as a run of the Passport
// document that holds it, by version and hash.
func (s *Service) throughDocument(job *fleet.Job, platform string) error {
	cmd, err := s.docs.Command(platform, job.Script)
	if err != nil {
		return err
	}
	job.Document, job.DocumentVersion, job.DocumentHash = cmd.Document, cmd.Version, cmd.Hash
	job.Parameters, job.Script = cmd.Parameters, ""
	return nil
}

// platformOf reads a grant's targets' platforms; a target recorded
// before Windows targets existed is Linux.
func (g *Grant) platformOf(id string) string {
	if p := g.target(id).Platform; p != "" {
		return p
	}
	return Linux
}

// hasWindows reports whether any of targets is a Windows node.
func hasWindows(targets []string, platform func(string) string) bool {
	return slices.ContainsFunc(targets, func(id string) bool { return isWindows(platform(id)) })
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
// when one is unknown, offline or neither Linux nor Windows, naming each.
func (s *Service) inventory(ctx context.Context, targets []string) (map[string]fleet.Target, error) {
	inv, err := s.fleetInventory(ctx, targets)
	if err != nil {
		return nil, classed(Unavailable, fmt.Errorf("no host was touched: the targets could not be looked up in Systems Manager: %w", err))
	}
	var bad []string
	for _, id := range targets {
		if why := Unusable(inv[id]); why != "" {
			bad = append(bad, why)
		}
	}
	if len(bad) > 0 {
		return nil, invalid("targets", "no host was touched: %s cannot take access now:\n  - %s", plural(len(bad), "target"), strings.Join(bad, "\n  - "))
	}
	return inv, nil
}

// Unusable says, naming the instance, why t cannot take access now
// (unknown to Systems Manager, offline, neither Linux nor Windows) and
// what to do; it is empty when t can.
func Unusable(t fleet.Target) string {
	switch {
	case t.Unreachable() != "":
		return t.Unreachable()
	case t.PlatformType != Linux && t.PlatformType != Windows:
		return fmt.Sprintf("%s: is a %s node; Passport grants access to Linux and Windows nodes only: remove it from targets", t.InstanceID, t.PlatformType)
	}
	return ""
}

// Inventory is what Systems Manager says of targets, as Grant reads it
// before touching anything: a preview of a request shows each target's
// platform and connection, and Unusable of each, before it is made.
func (s *Service) Inventory(ctx context.Context, targets []string) (map[string]fleet.Target, error) {
	return s.fleetInventory(ctx, targets)
}

// Platforms reports each target's platform as Systems Manager knows it
// (Linux, Windows, ...), leaving out those it does not manage. It changes
// nothing: callers use it to say early which settings a target ignores.
func (s *Service) Platforms(ctx context.Context, targets []string) (map[string]string, error) {
	inv, err := s.fleetInventory(ctx, targets)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(inv))
	for id, t := range inv {
		if t.Known {
			out[id] = t.PlatformType
		}
	}
	return out, nil
}

// fleetInventory asks SSM what it knows of targets, bounded by the
// service's timeout.
func (s *Service) fleetInventory(ctx context.Context, targets []string) (map[string]fleet.Target, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.fleet.Inventory(ctx, targets)
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
