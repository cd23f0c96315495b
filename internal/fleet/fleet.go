// Package fleet runs one script on many managed nodes at once through SSM Run
// Command and reports exactly one result per node.
//
// Passport grants, extends and revokes access by sending the same script to
// every target of a request. fleet does the fan-out: it checks the targets'
// inventory, sends the script in batches of at most 50 instances (SSM's limit
// per SendCommand), watches the commands with as few calls as it can, backs
// off when SSM throttles, cancels what is still running when the caller's
// deadline passes, and turns SSM's statuses into plain outcomes and reasons.
// What a failure means (retry, roll back, alert) is the caller's decision.
//
// SSM calls are counted, because AWS throttles them per account. A run on N
// online hosts costs ceil(N/50) DescribeInstanceInformation pages, ceil(N/50)
// SendCommand calls and ceil(N/50) ListCommandInvocations pages, which no
// client can do with less, plus one ListCommands page per look at up to 50
// commands, plus GetCommandInvocation only for a host whose output SSM cut
// short. With Options.FirstPoll near the script's run time, a thousand hosts
// take 61 calls where 60 is the minimum.
package fleet

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// Client is the part of the SSM API fleet uses, with the method signatures
// of *ssm.Client, so the real client fits and nothing else is needed.
type Client interface {
	DescribeInstanceInformation(context.Context, *ssm.DescribeInstanceInformationInput, ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
	SendCommand(context.Context, *ssm.SendCommandInput, ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	ListCommands(context.Context, *ssm.ListCommandsInput, ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
	ListCommandInvocations(context.Context, *ssm.ListCommandInvocationsInput, ...func(*ssm.Options)) (*ssm.ListCommandInvocationsOutput, error)
	GetCommandInvocation(context.Context, *ssm.GetCommandInvocationInput, ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
	CancelCommand(context.Context, *ssm.CancelCommandInput, ...func(*ssm.Options)) (*ssm.CancelCommandOutput, error)
}

var _ Client = (*ssm.Client)(nil)

// maxBatch is SSM's limit on InstanceIds in one SendCommand, and the page
// size of DescribeInstanceInformation, ListCommands and
// ListCommandInvocations.
const maxBatch = 50

// Options tune a Runner. The zero value is ready for real AWS.
type Options struct {
	// BatchSize is how many instances share one SendCommand. Values outside
	// 1–50 mean 50, SSM's limit.
	BatchSize int
	// Concurrency is how many calls of one kind (SendCommand batches,
	// inventory chunks, invocation reads) are in flight at once. Default 4:
	// more mostly earns throttling.
	Concurrency int
	// MaxConcurrency is SendCommand's MaxConcurrency, how many of a batch's
	// hosts SSM runs the script on at once. Default "100%".
	MaxConcurrency string
	// FirstPoll is the wait between sending and the first look at the
	// commands. Set it near the script's usual run time: earlier looks only
	// cost calls. Default 2s.
	FirstPoll time.Duration
	// MaxPoll caps the wait between looks, which grows by half each time.
	// Default 15s.
	MaxPoll time.Duration
	// ThrottleBackoff is the first wait after the SDK's own retries of a
	// throttled call are used up; it doubles up to MaxPoll. Default 1s.
	ThrottleBackoff time.Duration
	// CleanupTimeout bounds the calls made after the caller's context has
	// ended: reading what did finish and cancelling the rest. Default 15s.
	CleanupTimeout time.Duration
	// Sleep waits for d or until ctx ends, whichever is first, and returns
	// ctx.Err() in the second case. Tests inject it; default is a timer.
	// Backoffs of concurrent calls may use it from several goroutines.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o Options) withDefaults() Options {
	if o.BatchSize < 1 || o.BatchSize > maxBatch {
		o.BatchSize = maxBatch
	}
	if o.Concurrency < 1 {
		o.Concurrency = 4
	}
	if o.MaxConcurrency == "" {
		o.MaxConcurrency = "100%"
	}
	if o.FirstPoll <= 0 {
		o.FirstPoll = 2 * time.Second
	}
	if o.MaxPoll <= 0 {
		o.MaxPoll = 15 * time.Second
	}
	if o.ThrottleBackoff <= 0 {
		o.ThrottleBackoff = time.Second
	}
	if o.CleanupTimeout <= 0 {
		o.CleanupTimeout = 15 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Runner sends scripts to fleets of managed nodes. It is safe for
// concurrent use.
type Runner struct {
	ssm  Client
	opts Options
}

// New returns a Runner that talks to SSM through c.
func New(c Client, opts Options) *Runner {
	return &Runner{ssm: c, opts: opts.withDefaults()}
}

// Outcome is what happened to the script on one host.
type Outcome string

// Outcomes. Only Success and Failed mean the script ran to its end; after
// TimedOut and Cancelled it may have run partly; after the others it never
// started.
const (
	Success          Outcome = "success"            // exited 0
	Failed           Outcome = "failed"             // exited non-zero
	TimedOut         Outcome = "timed out"          // no end within the execution timeout or the caller's deadline (then cancelled), or SSM never confirmed the command
	Cancelled        Outcome = "cancelled"          // cancelled by someone else, or by SSM
	Offline          Outcome = "offline"            // the SSM agent is not connected; nothing was sent
	UnknownInstance  Outcome = "unknown instance"   // not a managed node in this account and region; nothing was sent
	Undeliverable    Outcome = "undeliverable"      // SSM refused the command or could not hand it over, or the run ended before it was sent
	DeliveryTimedOut Outcome = "delivery timed out" // the agent did not pick the script up within the delivery timeout
)

// Result is the fate of the script on one host.
type Result struct {
	InstanceID string
	Outcome    Outcome
	// ExitCode is the script's exit code (SSM's ResponseCode); -1 when the
	// script did not run to an end.
	ExitCode int
	// Stdout and Stderr are the script's output as far as SSM keeps it
	// (24,000 and 8,000 characters).
	Stdout, Stderr string
	// Reason says in plain words, naming the host, what happened and, when
	// something went wrong, what to do about it.
	Reason string
	// CommandID is the SSM command that carried the script to this host,
	// empty when nothing was sent. Audit records keep it.
	CommandID string
}
