package ssm

import (
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// Invocation StatusDetails values, as the API sends them. Each maps to one
// CommandInvocationStatus (see invocationStatus).
const (
	detailPending           = "Pending"
	detailInProgress        = "InProgress"
	detailSuccess           = "Success"
	detailFailed            = "Failed"
	detailDeliveryTimedOut  = "DeliveryTimedOut"
	detailExecutionTimedOut = "ExecutionTimedOut"
	detailCancelled         = "Cancelled"
	detailCancelling        = "Cancelling"
	detailUndeliverable     = "Undeliverable"
	detailTerminated        = "Terminated"
	detailInvalidPlatform   = "InvalidPlatform"
)

// invocationStatus maps StatusDetails to Status. Undeliverable and
// InvalidPlatform are failures that do not count against MaxErrors;
// Terminated invocations were cancelled by the system when MaxErrors was
// exceeded.
func invocationStatus(detail string) string {
	switch detail {
	case detailDeliveryTimedOut, detailExecutionTimedOut:
		return "TimedOut"
	case detailUndeliverable, detailInvalidPlatform:
		return "Failed"
	case detailTerminated:
		return "Cancelled"
	}
	return detail
}

// pluginStatus maps StatusDetails to CommandPluginStatus, which has no
// Delayed or Cancelling.
func pluginStatus(detail string) string {
	switch s := invocationStatus(detail); s {
	case detailCancelling:
		return detailInProgress
	default:
		return s
	}
}

func terminal(detail string) bool {
	switch detail {
	case detailPending, detailInProgress, detailCancelling:
		return false
	}
	return true
}

// document is what a command reports of the document it ran.
type document struct {
	name     string // AWS-RunShellScript
	plugin   string // the name of its step, which invocations report as PluginName
	action   string // its step's action, aws:runShellScript or aws:runPowerShellScript
	platform string // node.Linux or node.Windows
}

// command is one SendCommand and its invocations. All fields are guarded
// by Service.mu except wakeup, which is safe to signal without it.
type command struct {
	id          string
	seq         int
	doc         document
	version     string
	parameters  map[string][]string
	script      node.Script
	comment     string
	instanceIDs []string // as requested; empty when Targets were used
	targets     []target
	requested   time.Time
	timeout     int       // TimeoutSeconds
	deliverBy   time.Time // requested + TimeoutSeconds: later, undelivered invocations do not run
	expires     time.Time // deliverBy + executionTimeout: ExpiresAfter
	concurrency string    // MaxConcurrency as given (or the default)
	maxErrors   string
	runLimit    int // MaxConcurrency resolved against the target count
	errorLimit  int // MaxErrors resolved against the target count
	outputS3    outputS3

	invocations []*invocation
	cancelled   bool // CancelCommand was called for every invocation
	finished    bool // every invocation is terminal and the dispatcher has ended
	wakeup      chan struct{}
}

type outputS3 struct {
	Region, Bucket, KeyPrefix string
}

type target struct {
	Key    string
	Values []string
}

// invocation is a command on one node.
type invocation struct {
	cmd          *command
	index        int // position in cmd.invocations
	instanceID   string
	instanceName string
	detail       string
	exitCode     int // -1 until the script reports one
	start, end   time.Time
	stdout       string
	stderr       string
	// outputURL holds the S3 URLs of the output objects the agent wrote
	// (stdout, stderr), for GetCommandInvocation.
	outputURL map[string]string
	cancel    func() // cancels a running script; nil when not running
	// interrupted is set when the node dropped off while the script ran:
	// the invocation stays InProgress until the node is back or its
	// execution timeout has passed, then ends Failed.
	interrupted bool
	// cancelRequested is set by CancelCommand.
	cancelRequested bool
}

func (c *command) wake() {
	select {
	case c.wakeup <- struct{}{}:
	default:
	}
}

// counts aggregates invocations as the Command shape reports them.
type counts struct {
	target, completed, errors, deliveryTimedOut int
	success, running, pending, undeliverable    int
	executionTimedOut, cancelled                int
}

func (c *command) count() counts {
	var n counts
	n.target = len(c.invocations)
	for _, inv := range c.invocations {
		if terminal(inv.detail) {
			n.completed++
		}
		switch inv.detail {
		case detailPending:
			n.pending++
		case detailInProgress, detailCancelling:
			n.running++
		case detailSuccess:
			n.success++
		case detailFailed:
			n.errors++
		case detailExecutionTimedOut:
			n.errors++
			n.executionTimedOut++
		case detailDeliveryTimedOut:
			n.deliveryTimedOut++
		case detailUndeliverable:
			n.undeliverable++
		case detailCancelled:
			n.cancelled++
		}
	}
	return n
}

// status returns the command's Status and StatusDetails.
//
// While invocations are outstanding the command is Pending (none started),
// InProgress, or Cancelling after CancelCommand. Once all are terminal:
//   - Cancelled after CancelCommand;
//   - Failed when more invocations failed (Failed or ExecutionTimedOut)
//     than MaxErrors allows, TimedOut/DeliveryTimedOut when as many
//     deliveries timed out;
//   - Success when every invocation that was delivered succeeded
//     (Undeliverable ones are ignored, as AWS documents);
//   - Failed when nothing succeeded (all Undeliverable, all
//     InvalidPlatform, ...), and when Targets matched no node
//     (StatusDetails NoInstancesInTag);
//   - otherwise Failed with StatusDetails Incomplete: some invocations
//     succeeded, others did not, within MaxErrors (Status has no
//     Incomplete value).
func (c *command) status() (status, detail string) {
	n := c.count()
	if n.target == 0 {
		return "Failed", "NoInstancesInTag"
	}
	if n.completed < n.target {
		switch {
		case c.cancelled:
			return "Cancelling", "Cancelling"
		case n.pending == n.target:
			return "Pending", "Pending"
		}
		return "InProgress", "InProgress"
	}
	switch {
	case c.cancelled && n.cancelled > 0:
		return "Cancelled", "Cancelled"
	case n.errors > c.errorLimit:
		if n.executionTimedOut == n.errors {
			return "TimedOut", "ExecutionTimedOut"
		}
		return "Failed", "Failed"
	case n.deliveryTimedOut > c.errorLimit:
		return "TimedOut", "DeliveryTimedOut"
	case n.success > 0 && n.success+n.undeliverable == n.target:
		return "Success", "Success"
	case n.undeliverable == n.target:
		return "Failed", "Undeliverable"
	case n.deliveryTimedOut == n.target:
		return "TimedOut", "DeliveryTimedOut"
	case n.success == 0:
		return "Failed", "Failed"
	}
	return "Failed", "Incomplete"
}
