package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// command is one SendCommand: a batch of hosts that share a CommandId.
type command struct {
	id string
	// hosts are the batch's hosts that have no result yet.
	hosts []string
	// requested is when SSM accepted the command, by SSM's clock.
	requested time.Time
}

// tally collects results from concurrent batches.
type tally struct {
	mu      sync.Mutex
	results map[string]Result
}

func (t *tally) add(rs ...Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range rs {
		t.results[r.InstanceID] = r
	}
}

// each returns one result per host, all alike but for the instance id,
// which also heads each Reason.
func each(hosts []string, r Result) []Result {
	out := make([]Result, len(hosts))
	for i, h := range hosts {
		out[i] = r
		out[i].InstanceID = h
		out[i].Reason = h + ": " + r.Reason
	}
	return out
}

// noDeadlineGrace is added to a job's delivery and execution timeouts to
// bound a Run whose context has no deadline: by then SSM has given up on
// every host itself (with MaxConcurrency at 100%; below that, give Run a
// deadline of your own).
const noDeadlineGrace = time.Minute

// Run sends the job's script to its targets and returns one result per
// target, in the order of job.Targets. Offline and unknown instances are
// reported without being sent anything. When ctx ends, commands still
// running are cancelled and their hosts reported as timed out (or
// cancelled, when ctx was cancelled rather than timed out).
//
// The error is for when nothing could be tried at all: an invalid job, or
// SSM refusing the inventory (credentials, permissions, region). Trouble
// with single hosts, including SSM refusing to send to them, is in the
// results.
func (r *Runner) Run(ctx context.Context, job Job) ([]Result, error) {
	job, err := job.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, job.DeliveryTimeout+job.ExecutionTimeout+noDeadlineGrace)
		defer cancel()
	}
	inv, err := r.Inventory(ctx, job.Targets)
	if err != nil {
		return nil, err
	}
	t := &tally{results: make(map[string]Result, len(job.Targets))}
	var ready []string
	for _, id := range job.Targets {
		target := inv[id]
		switch {
		case !target.Known:
			t.add(Result{InstanceID: id, Outcome: UnknownInstance, ExitCode: -1, Reason: target.Unreachable()})
		case target.Unreachable() != "":
			t.add(Result{InstanceID: id, Outcome: Offline, ExitCode: -1, Reason: target.Unreachable()})
		case job.Document == ShellScript && target.PlatformType == string(types.PlatformTypeWindows):
			t.add(Result{InstanceID: id, Outcome: Undeliverable, ExitCode: -1,
				Reason: fmt.Sprintf("%s: is a Windows node, and %s runs only on Linux and macOS; use %s", id, ShellScript, PowerShellScript)})
		default:
			ready = append(ready, id)
		}
	}
	r.await(ctx, job, r.send(ctx, job, ready, t), t)

	out := make([]Result, len(job.Targets))
	for i, id := range job.Targets {
		out[i] = t.results[id]
	}
	return out, nil
}

// send sends the job to hosts in batches and returns the commands SSM
// accepted; hosts it refused get their results in t.
func (r *Runner) send(ctx context.Context, job Job, hosts []string, t *tally) []*command {
	batches := chunk(hosts, r.opts.BatchSize)
	sent := make([][]*command, len(batches))
	r.parallel(len(batches), func(i int) {
		sent[i] = r.sendBatch(ctx, job, batches[i], t)
	})
	return slices.Concat(sent...)
}

func (r *Runner) sendBatch(ctx context.Context, job Job, hosts []string, t *tally) []*command {
	if ctx.Err() != nil {
		t.add(each(hosts, Result{Outcome: Undeliverable, ExitCode: -1, Reason: "not sent: " + stopped(ctx) + " before its batch was sent"})...)
		return nil
	}
	in := &ssm.SendCommandInput{
		DocumentName:   aws.String(job.Document),
		InstanceIds:    hosts,
		Parameters:     job.parameters(),
		TimeoutSeconds: aws.Int32(int32(seconds(job.DeliveryTimeout))),
		MaxConcurrency: aws.String(r.opts.MaxConcurrency),
		// Every host is attempted whatever happens on the others: the
		// caller, not SSM, decides what a failure means.
		MaxErrors: aws.String("100%"),
	}
	if job.Comment != "" {
		in.Comment = aws.String(job.Comment)
	}
	if job.OutputS3Bucket != "" {
		in.OutputS3BucketName = aws.String(job.OutputS3Bucket)
		if job.OutputS3KeyPrefix != "" {
			in.OutputS3KeyPrefix = aws.String(job.OutputS3KeyPrefix)
		}
	}
	if job.DocumentVersion != "" {
		in.DocumentVersion = aws.String(job.DocumentVersion)
	}
	if job.DocumentHash != "" {
		in.DocumentHash, in.DocumentHashType = aws.String(job.DocumentHash), types.DocumentHashTypeSha256
	}
	var out *ssm.SendCommandOutput
	err := r.call(ctx, false, func(ctx context.Context) (err error) {
		// A SendCommand cut off in flight may still be accepted, leaving a
		// command that nobody watches or cancels. Letting it finish (within
		// CleanupTimeout) tells us its id, so abandon can cancel it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.CleanupTimeout)
		defer cancel()
		out, err = r.ssm.SendCommand(ctx, in)
		return err
	})
	if err == nil && (out.Command == nil || aws.ToString(out.Command.CommandId) == "") {
		err = errors.New("SSM accepted the command but returned no command id")
	}
	var invalid *types.InvalidInstanceId
	var platform *types.UnsupportedPlatformType
	switch {
	case err == nil:
		return []*command{{id: *out.Command.CommandId, hosts: hosts, requested: aws.ToTime(out.Command.RequestedDateTime)}}
	case (errors.As(err, &invalid) || errors.As(err, &platform)) && len(hosts) > 1:
		// SSM refuses a whole batch when one instance cannot take the
		// command (deregistered since the inventory, or of a platform the
		// document does not run on). Halving finds it in a few calls
		// without costing the others their access.
		h := len(hosts) / 2
		return append(r.sendBatch(ctx, job, hosts[:h], t), r.sendBatch(ctx, job, hosts[h:], t)...)
	case errors.As(err, &invalid):
		t.add(each(hosts, Result{Outcome: Undeliverable, ExitCode: -1,
			Reason: fmt.Sprintf("SSM will not send it commands (%s); the instance may have stopped, or lost or deregistered its agent, since it was checked", explain(err))})...)
	case errors.As(err, &platform):
		t.add(each(hosts, Result{Outcome: Undeliverable, ExitCode: -1,
			Reason: fmt.Sprintf("%s does not run on this instance's platform (%s)", job.Document, explain(err))})...)
	case refused(err):
		t.add(each(hosts, Result{Outcome: Undeliverable, ExitCode: -1,
			Reason: fmt.Sprintf("SSM refused the command (%s)", explain(err))})...)
	default:
		t.add(each(hosts, Result{Outcome: TimedOut, ExitCode: -1,
			Reason: fmt.Sprintf("SSM did not confirm the command (%s); it may still run the script", explain(err))})...)
	}
	return nil
}

// await watches the commands until every host has a result or ctx ends.
// Polls start at FirstPoll and grow by half up to MaxPoll: each costs at
// least one call, and scripts that are not done at the expected time
// usually need a while longer.
func (r *Runner) await(ctx context.Context, job Job, pending []*command, t *tally) {
	wait := r.opts.FirstPoll
	var cause error
	byID := false
	for len(pending) > 0 {
		if r.opts.Sleep(ctx, wait) != nil {
			break
		}
		wait = min(wait*3/2, r.opts.MaxPoll)
		done, calls, err := r.poll(ctx, pending, byID)
		byID = byID || calls > len(pending)
		if err != nil {
			cause = err
			break
		}
		errs := make([]error, len(done))
		r.parallel(len(done), func(i int) {
			results, unfinished, err := r.collect(ctx, job, done[i])
			if err != nil {
				errs[i] = err
				return
			}
			t.add(results...)
			done[i].hosts = unfinished
		})
		pending = slices.DeleteFunc(pending, func(c *command) bool { return len(c.hosts) == 0 })
		if err := errors.Join(errs...); err != nil {
			cause = err
			break
		}
	}
	if len(pending) > 0 {
		r.abandon(ctx, job, pending, cause, t)
	}
}

// poll returns the pending commands that SSM reports finished, and how
// many calls it made. One ListCommands page covers 50 commands, so a run
// usually costs one call per poll. Other commands sent in the account since
// the run began share that listing; once they make it longer than one call
// per pending command, the caller sets byID and each is asked for by id.
func (r *Runner) poll(ctx context.Context, pending []*command, byID bool) ([]*command, int, error) {
	if byID || len(pending) == 1 {
		done := make([][]*command, len(pending))
		calls := make([]int, len(pending))
		errs := make([]error, len(pending))
		r.parallel(len(pending), func(i int) {
			done[i], calls[i], errs[i] = r.list(ctx, &ssm.ListCommandsInput{CommandId: aws.String(pending[i].id)}, pending[i:i+1])
		})
		total := 0
		for _, n := range calls {
			total += n
		}
		return slices.Concat(done...), total, errors.Join(errs...)
	}
	in := &ssm.ListCommandsInput{MaxResults: aws.Int32(maxBatch)}
	if since, ok := earliest(pending); ok {
		in.Filters = []types.CommandFilter{{
			Key:   types.CommandFilterKeyInvokedAfter,
			Value: aws.String(since.UTC().Format(time.RFC3339)),
		}}
	}
	return r.list(ctx, in, pending)
}

// list reads a ListCommands listing until it has seen every pending
// command, and returns those finished and the number of pages read.
func (r *Runner) list(ctx context.Context, in *ssm.ListCommandsInput, pending []*command) ([]*command, int, error) {
	waiting := make(map[string]*command, len(pending))
	for _, c := range pending {
		waiting[c.id] = c
	}
	var done []*command
	calls := 0
	pages := ssm.NewListCommandsPaginator(r.ssm, in)
	for pages.HasMorePages() && len(waiting) > 0 {
		var out *ssm.ListCommandsOutput
		err := r.call(ctx, true, func(ctx context.Context) (err error) {
			calls++
			out, err = pages.NextPage(ctx)
			return err
		})
		var unseen *types.InvalidCommandId
		if errors.As(err, &unseen) && in.CommandId != nil {
			// SSM is eventually consistent: a command it has just
			// accepted can be unknown to a read for a moment.
			return nil, calls, nil
		}
		if err != nil {
			return nil, calls, err
		}
		for _, c := range out.Commands {
			p, ours := waiting[aws.ToString(c.CommandId)]
			if !ours {
				continue
			}
			delete(waiting, p.id)
			if finished(c) {
				done = append(done, p)
			}
		}
	}
	return done, calls, nil
}

// earliest is the InvokedAfter bound that covers every pending command. It
// comes from SSM's own RequestedDateTime, so a skewed local clock cannot
// hide commands; the filter takes whole seconds, hence the margin.
func earliest(pending []*command) (time.Time, bool) {
	var first time.Time
	for _, c := range pending {
		if c.requested.IsZero() {
			return time.Time{}, false
		}
		if first.IsZero() || c.requested.Before(first) {
			first = c.requested
		}
	}
	return first.Truncate(time.Second).Add(-time.Second), true
}

func finished(c types.Command) bool {
	switch c.Status {
	case types.CommandStatusSuccess, types.CommandStatusFailed, types.CommandStatusTimedOut, types.CommandStatusCancelled:
		return true
	}
	return c.TargetCount > 0 && c.CompletedCount >= c.TargetCount
}

// collect reads a command's invocations and returns results for the hosts
// that are done, and the hosts that are not (SSM updates a command's status
// and its invocations separately, so a finished command can briefly list
// running invocations).
func (r *Runner) collect(ctx context.Context, job Job, c *command) ([]Result, []string, error) {
	waiting := make(map[string]bool, len(c.hosts))
	for _, h := range c.hosts {
		waiting[h] = true
	}
	var results []Result
	pages := ssm.NewListCommandInvocationsPaginator(r.ssm, &ssm.ListCommandInvocationsInput{
		CommandId:  aws.String(c.id),
		Details:    true,
		MaxResults: aws.Int32(maxBatch),
	})
	for pages.HasMorePages() && len(waiting) > 0 {
		var out *ssm.ListCommandInvocationsOutput
		err := r.call(ctx, true, func(ctx context.Context) (err error) {
			out, err = pages.NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, nil, err
		}
		for _, inv := range out.CommandInvocations {
			host := aws.ToString(inv.InstanceId)
			if !waiting[host] || !settled(inv.Status) {
				continue
			}
			delete(waiting, host)
			results = append(results, r.result(ctx, job, c.id, inv))
		}
	}
	unfinished := slices.DeleteFunc(slices.Clone(c.hosts), func(h string) bool { return !waiting[h] })
	return results, unfinished, nil
}

func settled(s types.CommandInvocationStatus) bool {
	switch s {
	case types.CommandInvocationStatusSuccess, types.CommandInvocationStatusFailed,
		types.CommandInvocationStatusTimedOut, types.CommandInvocationStatusCancelled:
		return true
	}
	return false
}

// abandon ends the watch on commands that are still pending because ctx
// ended or SSM could not be read (cause). It reads what did finish, cancels
// the rest and reports those hosts as timed out. It runs on a context of its
// own, since ctx may be over.
func (r *Runner) abandon(ctx context.Context, job Job, pending []*command, cause error, t *tally) {
	outcome, why := TimedOut, "not finished when the deadline passed"
	switch {
	case ctx.Err() == nil && cause != nil:
		why = fmt.Sprintf("no result could be read from SSM (%s)", explain(cause))
	case errors.Is(ctx.Err(), context.Canceled):
		outcome, why = Cancelled, "not finished when the run was stopped"
	}
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.CleanupTimeout)
	defer cancel()
	r.parallel(len(pending), func(i int) {
		c := pending[i]
		if results, unfinished, err := r.collect(cleanup, job, c); err == nil {
			t.add(results...)
			c.hosts = unfinished
		}
		if len(c.hosts) == 0 {
			return
		}
		reason := why + "; the command was cancelled, so the script may have run partly"
		err := r.call(cleanup, true, func(ctx context.Context) error {
			_, err := r.ssm.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: aws.String(c.id), InstanceIds: c.hosts})
			return err
		})
		if err != nil {
			reason = fmt.Sprintf("%s; cancelling it failed too (%s): cancel command %s in the SSM console", why, explain(err), c.id)
		}
		t.add(each(c.hosts, Result{Outcome: outcome, ExitCode: -1, Reason: reason, CommandID: c.id})...)
	})
}

// stopped says why ctx ended, in the words of a Reason.
func stopped(ctx context.Context) string {
	if errors.Is(ctx.Err(), context.Canceled) {
		return "the run was stopped"
	}
	return "the deadline passed"
}
