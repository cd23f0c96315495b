package fleet

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

func TestRunThrottled(t *testing.T) {
	tests := []struct {
		name     string
		attempts int
	}{
		{"SDK retries", 0},
		// With retries off in the SDK, fleet's own backoff has to carry
		// every call through.
		{"SDK does not retry", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := startLab(t, 60, tt.attempts)
			l.srv.SetThrottleEvery(3)
			results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "true"})
			for _, res := range results {
				if res.Outcome != Success {
					t.Errorf("%s: %s", res.InstanceID, res.Reason)
				}
			}
		})
	}
}

// TestRunAlwaysThrottled checks that fleet backs off rather than hammering
// an SSM that throttles everything, and says so when it gives up.
func TestRunAlwaysThrottled(t *testing.T) {
	l := startLab(t, 3, 0)
	l.srv.SetThrottleEvery(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := New(l.client, fastOptions).Run(ctx, Job{Targets: l.ids, Script: "true"})
	if err == nil || !strings.Contains(err.Error(), "ThrottlingException") || !strings.Contains(err.Error(), "throttled every attempt") {
		t.Errorf("err = %v, want one that says SSM throttled", err)
	}
	// Backing off from 10ms to 100ms fits about a dozen rounds of the
	// SDK's three attempts in a second; without backoff it would be hundreds.
	t.Logf("%v; %d calls", err, totalCalls(l.srv.Calls()))
	if n := totalCalls(l.srv.Calls()); n > 60 {
		t.Errorf("%d calls in one second of throttling", n)
	}
}

func TestRunStopsAtDeadline(t *testing.T) {
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		outcome Outcome
		reason  string
	}{
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Second)
		}, TimedOut, "not finished when the deadline passed; the command was cancelled, so the script may have run partly"},
		{"caller stops", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Second, cancel)
			return ctx, cancel
		}, Cancelled, "not finished when the run was stopped; the command was cancelled, so the script may have run partly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := startLab(t, 3, 0)
			fast, slow := l.ids[0], l.ids[1:]
			// The slow hosts would answer long after run gives up on a
			// hung Run: a Run that waited for them fails there.
			for _, id := range slow {
				l.nodes[id].SetDelay(time.Hour)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			results := run(t, New(l.client, fastOptions), ctx, Job{Targets: l.ids, Script: "sleep 3600"})
			if results[0].Outcome != Success {
				t.Errorf("%s finished before the deadline but got %s", fast, results[0].Reason)
			}
			for _, res := range results[1:] {
				if res.Outcome != tt.outcome || res.Reason != res.InstanceID+": "+tt.reason {
					t.Errorf("%s: got %s %q, want %s %q", res.InstanceID, res.Outcome, res.Reason, tt.outcome, tt.reason)
				}
			}
			if n := l.srv.Calls()["AmazonSSM.CancelCommand"]; n != 1 {
				t.Errorf("CancelCommand called %d times, want 1", n)
			}
			inv, err := l.client.ListCommandInvocations(context.Background(), &ssm.ListCommandInvocationsInput{CommandId: aws.String(results[1].CommandID)})
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range inv.CommandInvocations {
				if id := aws.ToString(i.InstanceId); id != fast && i.Status != types.CommandInvocationStatusCancelled && i.Status != types.CommandInvocationStatusCancelling {
					t.Errorf("%s is still %s after the run ended", id, i.Status)
				}
			}
		})
	}
}

// dropsOff is a node whose agent is connected when the inventory is taken
// and gone from then on.
type dropsOff struct {
	*node.Model
	pings atomic.Int32
}

func (d *dropsOff) Online() bool { return d.pings.Add(1) == 1 }

func TestRunExecutionTimeout(t *testing.T) {
	l := startLab(t, 1, 0)
	slow := l.ids[0]
	l.nodes[slow].SetDelay(time.Minute)
	job := Job{Targets: l.ids, Script: "sleep 60", ExecutionTimeout: time.Second}
	results := run(t, New(l.client, fastOptions), context.Background(), job)
	if got, want := results[0], slow+": the script was still running after its execution timeout of 1s and was stopped; the host may be half-done"; got.Outcome != TimedOut || got.Reason != want {
		t.Errorf("got %s %q, want %s %q", got.Outcome, got.Reason, TimedOut, want)
	}
}

func TestRunDeliveryTimeout(t *testing.T) {
	var skew atomic.Int64
	l := startLabClock(t, 0, 0, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	gone := testIDs(1)[0]
	l.svc.AddNode(&dropsOff{Model: node.NewModel(node.Info{InstanceID: gone})})
	opts := fastOptions
	opts.Sleep = func(ctx context.Context, d time.Duration) error {
		// Each poll finds SSM's clock 20s on, so the host that dropped off
		// passes its 30s delivery timeout in two polls.
		skew.Add(int64(20 * time.Second))
		return sleep(ctx, d)
	}
	job := Job{Targets: []string{gone}, Script: "true", DeliveryTimeout: 30 * time.Second}
	results := run(t, New(l.client, opts), context.Background(), job)
	if got, want := results[0], gone+": the SSM agent did not pick the script up within 30s; check that the instance is running and its agent connected"; got.Outcome != DeliveryTimedOut || got.Reason != want {
		t.Errorf("host that dropped off: got %s %q, want %s %q", got.Outcome, got.Reason, DeliveryTimedOut, want)
	}
}

// TestRunCommandExpired covers SSM giving up on a command whose script
// started but outlived the delivery plus execution timeouts: SSM calls that
// DeliveryTimedOut, yet the script ran, so it must not read as never sent.
func TestRunCommandExpired(t *testing.T) {
	var skew atomic.Int64
	l := startLabClock(t, 0, 0, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	id := testIDs(1)[0]
	host := &gated{Model: node.NewModel(node.Info{InstanceID: id}), started: make(chan struct{}), open: make(chan struct{})}
	l.svc.AddNode(host)
	opts := fastOptions
	opts.Sleep = func(ctx context.Context, d time.Duration) error {
		// Once the script has started, every poll finds SSM's clock two
		// minutes on: past the command's 30s+1m expiry.
		select {
		case <-host.started:
		case <-ctx.Done():
			return ctx.Err()
		}
		skew.Add(int64(2 * time.Minute))
		return sleep(ctx, d)
	}
	job := Job{Targets: []string{id}, Script: "sleep 60", ExecutionTimeout: time.Minute, DeliveryTimeout: 30 * time.Second}
	results := run(t, New(l.client, opts), context.Background(), job)
	want := id + ": the script started but SSM gave up on it when the command expired (delivery timeout 30s plus execution timeout 1m0s); the host may be half-done"
	if got := results[0]; got.Outcome != TimedOut || got.Reason != want {
		t.Errorf("got %s %q, want %s %q", got.Outcome, got.Reason, TimedOut, want)
	}
}

// gated is a node whose scripts start, say so on started (once), and end
// when open is closed or SSM cancels them.
type gated struct {
	*node.Model
	once          sync.Once
	started, open chan struct{}
}

func (g *gated) Run(ctx context.Context, s node.Script) (node.Result, error) {
	g.once.Do(func() { close(g.started) })
	select {
	case <-g.open:
		return node.Result{}, nil
	case <-ctx.Done():
		return node.Result{}, ctx.Err()
	}
}

// rebooting is a node that goes down while it runs a script and comes
// back a moment later.
type rebooting struct {
	*node.Model
	down atomic.Bool
}

func (n *rebooting) Online() bool { return !n.down.Load() }

func (n *rebooting) Run(context.Context, node.Script) (node.Result, error) {
	n.down.Store(true)
	time.AfterFunc(100*time.Millisecond, func() { n.down.Store(false) })
	return node.Result{}, node.ErrOffline
}

func TestRunInterrupted(t *testing.T) {
	l := startLab(t, 0, 0)
	id := testIDs(1)[0]
	l.svc.AddNode(&rebooting{Model: node.NewModel(node.Info{InstanceID: id})})
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: []string{id}, Script: "reboot"})
	want := id + ": the script did not run to its end; the agent lost its connection or the host restarted, and the host may be half-done"
	if got := results[0]; got.Outcome != Failed || got.ExitCode != -1 || !strings.HasPrefix(got.Reason, want) {
		t.Errorf("got %s %d %q, want %s -1 %q", got.Outcome, got.ExitCode, got.Reason, Failed, want)
	}
}

// TestRunDeadlineWhileSending ends the run while batches are still going
// out: hosts reported as not sent must really have been sent nothing.
func TestRunDeadlineWhileSending(t *testing.T) {
	l := startLab(t, 120, 0)
	l.srv.SetLatency(100 * time.Millisecond)
	opts := fastOptions
	// 24 batches, two at a time, take 1.2s to send after the inventory's
	// 0.2s: the deadline falls with batches accepted and batches unsent.
	opts.BatchSize, opts.Concurrency = 5, 2
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	results := run(t, New(l.client, opts), ctx, Job{Targets: l.ids, Script: "true"})
	l.srv.SetLatency(0)
	count := map[Outcome]int{}
	for _, res := range results {
		count[res.Outcome]++
		switch res.Outcome {
		case Success, TimedOut:
		case Undeliverable:
			if want := res.InstanceID + ": not sent: the deadline passed before its batch was sent"; res.Reason != want {
				t.Errorf("got %q, want %q", res.Reason, want)
			}
			if n := l.commandsTo(t, res.InstanceID); n != 0 {
				t.Errorf("%s reported not sent, but the lab has %d commands for it", res.InstanceID, n)
			}
		default:
			t.Errorf("%s: unexpected %s: %s", res.InstanceID, res.Outcome, res.Reason)
		}
	}
	t.Logf("outcomes: %v", count)
	// Every command the lab accepted must be one the results account for,
	// or a script could run that nobody watches or cancels.
	known := map[string]bool{}
	for _, res := range results {
		if res.CommandID != "" {
			known[res.CommandID] = true
		}
	}
	accepted := 0
	for p := ssm.NewListCommandsPaginator(l.client, &ssm.ListCommandsInput{}); p.HasMorePages(); {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Commands {
			accepted++
			if !known[aws.ToString(c.CommandId)] {
				t.Errorf("command %s for %v is in no result", aws.ToString(c.CommandId), c.InstanceIds)
			}
		}
	}
	if accepted != len(known) {
		t.Errorf("the lab accepted %d commands, the results name %d", accepted, len(known))
	}
	if count[Undeliverable] == 0 || count[Success] == 0 {
		t.Errorf("the deadline did not fall while sending (timing on this machine?): %v", count)
	}
}

// TestRunUnconfirmedSend loses SSM's answer to a SendCommand it accepted:
// those hosts may run the script, so they must not be reported as never
// sent (callers treat Undeliverable hosts as untouched).
func TestRunUnconfirmedSend(t *testing.T) {
	l := startLab(t, 2, 0)
	front := l.faultyFront(t, http.StatusBadGateway, "upstream connection reset", "SendCommand")
	results := run(t, New(sdkClient(front, labAccessKey, labSecret, 1), fastOptions), context.Background(), Job{Targets: l.ids, Script: "true"})
	for _, res := range results {
		if res.Outcome != TimedOut || !strings.Contains(res.Reason, "SSM did not confirm the command") {
			t.Errorf("%s: got %s %q, want %s and a reason saying the command was not confirmed", res.InstanceID, res.Outcome, res.Reason, TimedOut)
		}
		if n := l.commandsTo(t, res.InstanceID); n != 1 {
			t.Errorf("the lab has %d commands for %s, want the 1 whose answer was lost", n, res.InstanceID)
		}
	}
}

// TestRunUnreadableResults denies the calls that read results. Run must
// not wait for its deadline, must cancel what it cannot watch, and must say
// why.
func TestRunUnreadableResults(t *testing.T) {
	denied := `{"__type":"AccessDeniedException","message":"User is not authorized to perform: ssm:ListCommands"}`
	tests := []struct {
		name    string
		blocked []string
		outcome Outcome
		reason  string
	}{
		// Results are read once more before giving up: with invocations
		// still readable, nothing is lost.
		{"ListCommands denied", []string{"ListCommands"}, Success, "the script succeeded"},
		{"all reads denied", []string{"ListCommands", "ListCommandInvocations"}, TimedOut,
			"no result could be read from SSM (AccessDeniedException: User is not authorized to perform: ssm:ListCommands); the command was cancelled, so the script may have run partly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := startLab(t, 2, 0)
			front := l.faultyFront(t, http.StatusBadRequest, denied, tt.blocked...)
			// A refusal will not go away by waiting: Run must give up
			// long before this deadline, which run would not wait for.
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			results := run(t, New(sdkClient(front, labAccessKey, labSecret, 0), fastOptions), ctx, Job{Targets: l.ids, Script: "true"})
			for _, res := range results {
				if res.Outcome != tt.outcome || res.Reason != res.InstanceID+": "+tt.reason {
					t.Errorf("got %s %q, want %s %q", res.Outcome, res.Reason, tt.outcome, tt.reason)
				}
			}
		})
	}
}
