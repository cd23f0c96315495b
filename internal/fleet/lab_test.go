package fleet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	labssm "github.com/passport-access/terraform-provider-passport/internal/lab/ssm"
)

// lab is the lab's SSM service on a loopback endpoint with model nodes,
// and the real SDK client signed for it.
type lab struct {
	srv    *awsjson.Server
	svc    *labssm.Service
	client *ssm.Client
	ids    []string
	nodes  map[string]*node.Model
}

const (
	labAccessKey = "AKIDFLEETTEST0000000"
	labSecret    = "fleet-test-secret"
)

// startLab registers n online Linux model nodes. attempts is the SDK
// client's MaxAttempts (0 keeps the default).
func startLab(t testing.TB, n, attempts int) *lab {
	t.Helper()
	return startLabClock(t, n, attempts, nil)
}

// startLabClock is startLab with the SSM service's clock, which decides
// delivery timeouts, set to now.
func startLabClock(t testing.TB, n, attempts int, now func() time.Time) *lab {
	t.Helper()
	return startLabConfig(t, n, attempts, labssm.Config{Region: "us-east-1", Now: now})
}

func startLabConfig(t testing.TB, n, attempts int, cfg labssm.Config) *lab {
	t.Helper()
	srv := awsjson.NewServer(awsjson.Config{Region: "us-east-1", Credentials: map[string]string{labAccessKey: labSecret}})
	svc := labssm.New(cfg)
	t.Cleanup(svc.Close)
	srv.Register(svc.API())
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	l := &lab{srv: srv, svc: svc, client: sdkClient(hs.URL, labAccessKey, labSecret, attempts), nodes: map[string]*node.Model{}}
	for i, id := range testIDs(n) {
		l.add(id, node.Info{InstanceID: id, ComputerName: fmt.Sprintf("host-%d", i), IPAddress: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), PlatformName: "Debian GNU/Linux"})
	}
	return l
}

func (l *lab) add(id string, info node.Info) *node.Model {
	m := node.NewModel(info)
	l.svc.AddNode(m)
	l.ids = append(l.ids, id)
	l.nodes[id] = m
	return m
}

// fastOptions poll and back off in milliseconds, for model nodes that
// answer at once.
var fastOptions = Options{FirstPoll: 20 * time.Millisecond, MaxPoll: 100 * time.Millisecond, ThrottleBackoff: 10 * time.Millisecond}

// commandsTo returns how many commands the lab received for an instance.
func (l *lab) commandsTo(t *testing.T, id string) int {
	t.Helper()
	out, err := l.client.ListCommands(context.Background(), &ssm.ListCommandsInput{InstanceId: aws.String(id)})
	if err != nil {
		t.Fatalf("ListCommands for %s: %v", id, err)
	}
	return len(out.Commands)
}

func run(t *testing.T, r *Runner, ctx context.Context, job Job) []Result {
	t.Helper()
	results, err := r.Run(ctx, job)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != len(job.Targets) {
		t.Fatalf("Run returned %d results for %d targets", len(results), len(job.Targets))
	}
	for i, res := range results {
		if res.InstanceID != job.Targets[i] {
			t.Fatalf("result %d is for %s, want %s (results must follow Targets)", i, res.InstanceID, job.Targets[i])
		}
		if !strings.HasPrefix(res.Reason, res.InstanceID+": ") {
			t.Errorf("reason %q does not name the host first", res.Reason)
		}
	}
	return results
}

func TestRunOutcomes(t *testing.T) {
	l := startLab(t, 3, 0)
	ok, failing, offline := l.ids[0], l.ids[1], l.ids[2]
	l.nodes[ok].SetAnswer(0, "created pp-abc\n", "")
	l.nodes[failing].SetAnswer(3, "checking\n", "useradd: user 'pp-abc' already exists\n")
	l.nodes[offline].SetOnline(false)
	windows := testIDs(4)[3]
	l.add(windows, node.Info{InstanceID: windows, PlatformType: node.Windows, PlatformName: "Microsoft Windows Server 2022"})
	unknown := "i-0fedcba9876543210"

	job := Job{Targets: []string{ok, failing, offline, unknown, windows}, Script: "useradd pp-abc", Comment: "grant g-1"}
	results := run(t, New(l.client, fastOptions), context.Background(), job)

	want := []struct {
		outcome        Outcome
		exit           int
		stdout, stderr string
		reason         string
	}{
		{Success, 0, "created pp-abc\n", "", ok + ": the script succeeded"},
		{Failed, 3, "checking\n", "useradd: user 'pp-abc' already exists\n", failing + ": the script exited 3: useradd: user 'pp-abc' already exists"},
		{Offline, -1, "", "", offline + ": SSM agent is not connected (PingStatus ConnectionLost); start the instance or check its agent"},
		{UnknownInstance, -1, "", "", unknown + ": not a managed node in this account and region; check the instance id and region, and that its SSM agent is installed and registered"},
		{Undeliverable, -1, "", "", windows + ": is a Windows node, and AWS-RunShellScript runs only on Linux and macOS; use AWS-RunPowerShellScript"},
	}
	for i, w := range want {
		got := results[i]
		if got.Outcome != w.outcome || got.ExitCode != w.exit || got.Stdout != w.stdout || got.Stderr != w.stderr || got.Reason != w.reason {
			t.Errorf("%s:\n got %+v\nwant %+v", got.InstanceID, got, w)
		}
		if sent := got.CommandID != ""; sent != (i < 2) {
			t.Errorf("%s: CommandID %q", got.InstanceID, got.CommandID)
		}
	}
	for _, id := range []string{offline, windows} {
		if n := l.commandsTo(t, id); n != 0 {
			t.Errorf("%s was sent %d commands; hosts that cannot run the script must be sent nothing", id, n)
		}
	}
}

func TestRunNothingToSend(t *testing.T) {
	l := startLab(t, 2, 0)
	for _, m := range l.nodes {
		m.SetOnline(false)
	}
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "true"})
	for _, res := range results {
		if res.Outcome != Offline {
			t.Errorf("%s: %s", res.InstanceID, res.Reason)
		}
	}
	if calls := l.srv.Calls(); totalCalls(calls) != 1 {
		t.Errorf("with every host offline Run made %v; the inventory alone is enough", calls)
	}
}

func TestRunPowerShell(t *testing.T) {
	l := startLab(t, 0, 0)
	id := testIDs(1)[0]
	l.add(id, node.Info{InstanceID: id, PlatformType: node.Windows, PlatformName: "Microsoft Windows Server 2022"}).SetAnswer(0, "created\r\n", "")
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Document: PowerShellScript, Script: "New-LocalUser pp-abc"})
	if res := results[0]; res.Outcome != Success || res.Stdout != "created\r\n" {
		t.Errorf("%+v", res)
	}
}

func TestRunBatches(t *testing.T) {
	l := startLab(t, 120, 0)
	for _, m := range l.nodes {
		m.SetAnswer(0, "ok\n", "")
	}
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "true"})
	commands := map[string]int{}
	for _, res := range results {
		if res.Outcome != Success || res.Stdout != "ok\n" {
			t.Errorf("%s: %+v", res.InstanceID, res)
		}
		commands[res.CommandID]++
	}
	if len(commands) != 3 {
		t.Errorf("120 hosts went out in %d commands, want 3 of at most 50: %v", len(commands), commands)
	}
	calls := l.srv.Calls()
	for op, want := range map[string]int{"DescribeInstanceInformation": 3, "SendCommand": 3, "ListCommandInvocations": 3, "GetCommandInvocation": 0} {
		if got := calls["AmazonSSM."+op]; got != want {
			t.Errorf("%s called %d times, want %d", op, got, want)
		}
	}
}

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
			return context.WithTimeout(context.Background(), 500*time.Millisecond)
		}, TimedOut, "not finished when the deadline passed; the command was cancelled, so the script may have run partly"},
		{"caller stops", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(500*time.Millisecond, cancel)
			return ctx, cancel
		}, Cancelled, "not finished when the run was stopped; the command was cancelled, so the script may have run partly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := startLab(t, 3, 0)
			fast, slow := l.ids[0], l.ids[1:]
			for _, id := range slow {
				l.nodes[id].SetDelay(time.Minute)
			}
			ctx, cancel := tt.ctx()
			defer cancel()
			start := time.Now()
			results := run(t, New(l.client, fastOptions), ctx, Job{Targets: l.ids, Script: "sleep 60"})
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("Run took %s after its context ended at 500ms", took)
			}
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
	l := startLabClock(t, 1, 0, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	gone := testIDs(2)[1]
	l.svc.AddNode(&dropsOff{Model: node.NewModel(node.Info{InstanceID: gone})})
	opts := fastOptions
	// Each poll finds SSM's clock 20s on, so the host that dropped off
	// passes its 30s delivery timeout in two polls.
	opts.Sleep = skewedSleep(&skew, 20*time.Second)
	job := Job{Targets: []string{l.ids[0], gone}, Script: "true", DeliveryTimeout: 30 * time.Second}
	results := run(t, New(l.client, opts), context.Background(), job)
	if results[0].Outcome != Success {
		t.Errorf("connected host: %s", results[0].Reason)
	}
	if got, want := results[1], gone+": the SSM agent did not pick the script up within 30s; check that the instance is running and its agent connected"; got.Outcome != DeliveryTimedOut || got.Reason != want {
		t.Errorf("host that dropped off: got %s %q, want %s %q", got.Outcome, got.Reason, DeliveryTimedOut, want)
	}
}

// skewedSleep returns an Options.Sleep that moves a lab clock on by step
// before every wait.
func skewedSleep(skew *atomic.Int64, step time.Duration) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		skew.Add(int64(step))
		return sleep(ctx, d)
	}
}

// TestRunCommandExpired covers SSM giving up on a command whose script
// started but outlived the delivery plus execution timeouts: SSM calls that
// DeliveryTimedOut, yet the script ran, so it must not read as never sent.
func TestRunCommandExpired(t *testing.T) {
	var skew atomic.Int64
	l := startLabClock(t, 1, 0, func() time.Time { return time.Now().Add(time.Duration(skew.Load())) })
	l.nodes[l.ids[0]].SetDelay(time.Minute)
	opts := fastOptions
	opts.Sleep = skewedSleep(&skew, 2*time.Minute)
	job := Job{Targets: l.ids, Script: "sleep 60", ExecutionTimeout: time.Minute, DeliveryTimeout: 30 * time.Second}
	results := run(t, New(l.client, opts), context.Background(), job)
	want := l.ids[0] + ": the script started but SSM gave up on it when the command expired (delivery timeout 30s plus execution timeout 1m0s); the host may be half-done"
	if got := results[0]; got.Outcome != TimedOut || got.Reason != want {
		t.Errorf("got %s %q, want %s %q", got.Outcome, got.Reason, TimedOut, want)
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

// faultyFront puts a proxy in front of the lab that passes every call on
// but replaces the answers to the named operations with status and body,
// as when a network or a permission boundary gets in the way. It returns
// the proxy's endpoint.
func (l *lab) faultyFront(t *testing.T, status int, body string, operations ...string) string {
	t.Helper()
	upstream, err := url.Parse(l.clientEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	proxy.ModifyResponse = func(resp *http.Response) error {
		target := strings.TrimPrefix(resp.Request.Header.Get("X-Amz-Target"), "AmazonSSM.")
		if slices.Contains(operations, target) {
			resp.Body.Close()
			resp.StatusCode = status
			resp.Body = io.NopCloser(strings.NewReader(body))
			resp.ContentLength = -1
			resp.Header.Del("Content-Length")
		}
		return nil
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	return front.URL
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
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			start := time.Now()
			results := run(t, New(sdkClient(front, labAccessKey, labSecret, 0), fastOptions), ctx, Job{Targets: l.ids, Script: "true"})
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("Run took %s: a refusal will not go away by waiting", took)
			}
			for _, res := range results {
				if res.Outcome != tt.outcome || res.Reason != res.InstanceID+": "+tt.reason {
					t.Errorf("got %s %q, want %s %q", res.Outcome, res.Reason, tt.outcome, tt.reason)
				}
			}
		})
	}
}

func TestRunReadsCutOutput(t *testing.T) {
	l := startLab(t, 3, 0)
	long, title, short := l.ids[0], l.ids[1], l.ids[2]
	longOut := strings.Repeat("line of output\n", 400)
	longErr := strings.Repeat("warning: something\n", 200)
	l.nodes[long].SetAnswer(1, longOut, longErr)
	// A script that prints the agent's stderr title itself makes the
	// combined output ambiguous.
	titleOut := "before" + stderrTitle + "after\n"
	l.nodes[title].SetAnswer(0, titleOut, "real stderr\n")
	l.nodes[short].SetAnswer(0, "ok\n", "")

	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "cat big"})
	for _, c := range []struct {
		res            Result
		stdout, stderr string
	}{
		{results[0], longOut, longErr},
		{results[1], titleOut, "real stderr\n"},
		{results[2], "ok\n", ""},
	} {
		if c.res.Stdout != c.stdout || c.res.Stderr != c.stderr {
			t.Errorf("%s: got stdout %d bytes, stderr %d bytes; want %d and %d", c.res.InstanceID, len(c.res.Stdout), len(c.res.Stderr), len(c.stdout), len(c.stderr))
		}
	}
	if want := l.ids[0] + ": the script exited 1: warning: something"; results[0].Reason != want {
		t.Errorf("reason %q, want %q", results[0].Reason, want)
	}
	if n := l.srv.Calls()["AmazonSSM.GetCommandInvocation"]; n != 2 {
		t.Errorf("GetCommandInvocation called %d times, want 2: only for the cut and the ambiguous output", n)
	}
}

// TestRunReadsOutputNotYetVisible asks for a full output while SSM still
// denies knowing the invocation, as AWS does just after SendCommand.
func TestRunReadsOutputNotYetVisible(t *testing.T) {
	l := startLabConfig(t, 1, 0, labssm.Config{InvocationDelay: 300 * time.Millisecond})
	long := strings.Repeat("x", 3000)
	l.nodes[l.ids[0]].SetAnswer(0, long, "")
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "cat big"})
	if got := results[0]; got.Outcome != Success || got.Stdout != long {
		t.Errorf("got %s with %d bytes of stdout, want success with %d", got.Outcome, len(got.Stdout), len(long))
	}
}

// TestSendSplitsRefusedBatch covers an instance that stops being a managed
// node between the inventory and SendCommand: SSM refuses its whole batch,
// and the others must still get the script.
func TestSendSplitsRefusedBatch(t *testing.T) {
	l := startLab(t, 10, 0)
	gone := l.ids[6]
	l.svc.RemoveNode(gone)
	job, err := Job{Targets: l.ids, Script: "true"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := New(l.client, fastOptions)
	tl := &tally{results: map[string]Result{}}
	cmds := r.send(context.Background(), job, job.Targets, tl)
	r.await(context.Background(), job, cmds, tl)
	for _, id := range l.ids {
		res := tl.results[id]
		switch {
		case id == gone && res.Outcome != Undeliverable:
			t.Errorf("deregistered %s: %+v", id, res)
		case id != gone && res.Outcome != Success:
			t.Errorf("%s: %s", id, res.Reason)
		}
	}
	t.Logf("%s", tl.results[gone].Reason)
}

func TestInventory(t *testing.T) {
	l := startLab(t, 70, 0)
	l.nodes[l.ids[5]].SetOnline(false)
	r := New(l.client, fastOptions)
	inv, err := r.Inventory(context.Background(), l.ids)
	if err != nil {
		t.Fatal(err)
	}
	want := Target{InstanceID: l.ids[0], Known: true, PingStatus: "Online", PlatformType: "Linux", PlatformName: "Debian GNU/Linux", ComputerName: "host-0", IPAddress: "10.0.0.1"}
	if got := inv[l.ids[0]]; got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := inv[l.ids[5]]; got.PingStatus != "ConnectionLost" || got.Unreachable() == "" {
		t.Errorf("offline node: %+v", got)
	}
	if n := l.srv.Calls()["AmazonSSM.DescribeInstanceInformation"]; n != 2 {
		t.Errorf("DescribeInstanceInformation called %d times for 70 ids, want 2", n)
	}

	// The lab, like SSM's API reference, refuses a filter that names an
	// instance it does not manage; finding it must not cost much.
	l.srv.ResetCalls()
	unknown := "mi-0123456789abcdef0"
	inv, err = r.Inventory(context.Background(), append(l.ids[:len(l.ids):len(l.ids)], unknown))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != 71 {
		t.Fatalf("inventory has %d targets, want 71", len(inv))
	}
	for _, id := range l.ids {
		if !inv[id].Known {
			t.Errorf("%s is a managed node but was reported unknown", id)
		}
	}
	if got := inv[unknown]; got.Known || got.Unreachable() == "" {
		t.Errorf("unknown node: %+v", got)
	}
	if n, limit := l.srv.Calls()["AmazonSSM.DescribeInstanceInformation"], 2+2*6; n > limit {
		t.Errorf("DescribeInstanceInformation called %d times to find one unknown id among 71, want at most %d", n, limit)
	}

	if _, err := r.Inventory(context.Background(), []string{"i-1"}); err == nil || !strings.Contains(err.Error(), `"i-1"`) {
		t.Errorf("malformed id: err = %v", err)
	}
}

func TestRunRefusedCredentials(t *testing.T) {
	l := startLab(t, 2, 0)
	bad := New(sdkClient(l.clientEndpoint(t), labAccessKey, "wrong-secret", 0), fastOptions)
	_, err := bad.Run(context.Background(), Job{Targets: l.ids, Script: "true"})
	if err == nil {
		t.Fatal("Run with a wrong secret key succeeded")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "credentials") {
		t.Errorf("error does not point at the credentials: %v", err)
	}
	if n := l.srv.Calls()["AmazonSSM.SendCommand"]; n != 0 {
		t.Errorf("SendCommand called %d times with refused credentials", n)
	}
}

func (l *lab) clientEndpoint(t *testing.T) string {
	t.Helper()
	return aws.ToString(l.client.Options().BaseEndpoint)
}

// minCalls is the fewest SSM calls a run on n online hosts can make: one
// inventory page, one SendCommand and one invocation page per 50 hosts.
func minCalls(n int) int { return 3 * ((n + maxBatch - 1) / maxBatch) }

func totalCalls(calls map[string]int) int {
	n := 0
	for _, c := range calls {
		n += c
	}
	return n
}

// TestCallBudget1000 holds fleet to at most 1.2 times the fewest calls for
// a thousand hosts whose scripts take about as long as FirstPoll expects.
func TestCallBudget1000(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand model nodes; skipped with -short")
	}
	const n = 1000
	l := startLab(t, n, 0)
	for _, m := range l.nodes {
		m.SetDelay(100 * time.Millisecond)
	}
	l.srv.SetLatency(5 * time.Millisecond)
	opts := Options{FirstPoll: 150 * time.Millisecond, MaxPoll: time.Second}
	results := run(t, New(l.client, opts), context.Background(), Job{Targets: l.ids, Script: "true"})
	for _, res := range results {
		if res.Outcome != Success {
			t.Fatalf("%s", res.Reason)
		}
	}
	calls := l.srv.Calls()
	if got, limit := totalCalls(calls), minCalls(n)*6/5; got > limit {
		t.Errorf("%d SSM calls for %d hosts, over the budget of %d (1.2 × %d): %v", got, n, limit, minCalls(n), calls)
	} else {
		t.Logf("%d SSM calls for %d hosts (minimum %d): %v", got, n, minCalls(n), calls)
	}
}

// BenchmarkFanOut1000 runs a script on a thousand model nodes that answer
// after 200ms, through an API that takes 20ms per call. The baseline is
// the same run on one node, measured in the same lab.
func BenchmarkFanOut1000(b *testing.B) {
	const n = 1000
	l := startLab(b, n, 0)
	for _, m := range l.nodes {
		m.SetDelay(200 * time.Millisecond)
	}
	l.srv.SetLatency(20 * time.Millisecond)
	r := New(l.client, Options{FirstPoll: 250 * time.Millisecond, MaxPoll: time.Second})
	ctx := context.Background()
	runOnce := func(targets []string) time.Duration {
		start := time.Now()
		results, err := r.Run(ctx, Job{Targets: targets, Script: "true"})
		if err != nil {
			b.Fatal(err)
		}
		for _, res := range results {
			if res.Outcome != Success {
				b.Fatal(res.Reason)
			}
		}
		return time.Since(start)
	}
	one := runOnce(l.ids[:1])
	l.srv.ResetCalls()
	b.ResetTimer()
	var wall time.Duration
	for range b.N {
		wall += runOnce(l.ids)
	}
	b.StopTimer()
	calls := float64(totalCalls(l.srv.Calls())) / float64(b.N)
	b.ReportMetric(calls/n, "calls/host")
	b.ReportMetric(calls/float64(minCalls(n)), "calls/min-calls")
	b.ReportMetric(float64(wall)/float64(b.N)/float64(one), "wall/one-host-wall")
}
