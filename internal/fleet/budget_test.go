package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

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

// TestPollAmidForeignCommands sends other commands in the same account
// while a run waits: once they make the shared listing longer than asking
// for each of the run's commands by id, fleet must ask by id.
func TestPollAmidForeignCommands(t *testing.T) {
	l := startLab(t, 0, 0)
	open := make(chan struct{})
	for _, id := range testIDs(100) {
		l.svc.AddNode(&gated{Model: node.NewModel(node.Info{InstanceID: id}), started: make(chan struct{}), open: open})
		l.ids = append(l.ids, id)
	}
	other := testIDs(101)[100]
	l.add(other, node.Info{InstanceID: other})
	polls := 0
	opts := fastOptions
	opts.Sleep = func(ctx context.Context, d time.Duration) error {
		switch polls {
		case 0:
			for range 150 {
				if _, err := l.client.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(ShellScript), InstanceIds: []string{other},
					Parameters: map[string][]string{"commands": {"true"}}}); err != nil {
					return err
				}
			}
			l.srv.ResetCalls()
		case 3:
			close(open)
		}
		polls++
		return sleep(ctx, d)
	}
	results := run(t, New(l.client, opts), context.Background(), Job{Targets: l.ids, Script: "true"})
	for _, res := range results {
		if res.Outcome != Success {
			t.Fatal(res.Reason)
		}
	}
	// The first poll reads the 152 newest commands in 4 pages; each later
	// one asks for the run's 2 commands.
	calls := l.srv.Calls()
	got, limit := calls["AmazonSSM.ListCommands"], 4+2*(polls-1)
	if got > limit {
		t.Errorf("%d ListCommands calls over %d polls, want at most %d: %v", got, polls, limit, calls)
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
