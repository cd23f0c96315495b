package access

import (
	"context"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// BenchmarkGrant100 grants one request on 100 model nodes and compares it
// with the fan-out floor: a bare fleet.Run of a trivial script to the same
// nodes, measured in the same iterations. grant/floor is the whole cost of
// a grant over the floor; grant/program-floor compares with a bare run of
// the provision program itself, leaving what the core adds (validation,
// its inventory check, signing, reading results). calls/grant and
// calls/floor count SSM API calls.
func BenchmarkGrant100(b *testing.B) {
	l := startLab(b, 0, 100)
	var targets []string
	for _, m := range l.Models {
		m.SetAnswer(0, "passport-result action=provision status=ok\n", "")
		targets = append(targets, m.Info().InstanceID)
	}
	ca := newCA(b)
	runner := fleet.New(l.ssm, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond})
	ctx := context.Background()
	calls := func() int {
		n := 0
		for _, c := range l.Server.Calls() {
			n += c
		}
		return n
	}
	// The provision program is some 30 KB that SendCommand carries and
	// ListCommands echoes back; sending it bare separates its cost from
	// the core's own.
	program, err := hostscript.Provision(hostscript.Grant{Username: "pp-bench", RequestID: "ar-0", Requester: "bench",
		CAPublicKey: authorizedKey(ca.PublicKey()), ExpiresAt: time.Now().Add(time.Hour), Serial: 1})
	if err != nil {
		b.Fatal(err)
	}
	var floor, carry, granting time.Duration
	var floorCalls, grantCalls int
	b.ResetTimer()
	for range b.N {
		l.Server.ResetCalls()
		start := time.Now()
		results, err := runner.Run(ctx, fleet.Job{Targets: targets, Script: "true"})
		floor += time.Since(start)
		floorCalls += calls()
		if err != nil || results[99].Outcome != fleet.Success {
			b.Fatalf("floor run: %v", err)
		}

		start = time.Now()
		if _, err := runner.Run(ctx, fleet.Job{Targets: targets, Script: program}); err != nil {
			b.Fatal(err)
		}
		carry += time.Since(start)

		l.Server.ResetCalls()
		start = time.Now()
		if _, err := l.svc.Grant(ctx, request(ca, targets...)); err != nil {
			b.Fatal(err)
		}
		granting += time.Since(start)
		grantCalls += calls()
	}
	b.ReportMetric(float64(granting.Nanoseconds())/float64(b.N), "ns/grant")
	b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N), "ns/floor")
	b.ReportMetric(float64(granting)/float64(floor), "grant/floor")
	b.ReportMetric(float64(granting)/float64(carry), "grant/program-floor")
	b.ReportMetric(float64(grantCalls)/float64(b.N), "calls/grant")
	b.ReportMetric(float64(floorCalls)/float64(b.N), "calls/floor")
}
