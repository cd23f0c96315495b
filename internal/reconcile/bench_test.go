package reconcile

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// BenchmarkPass measures a pass over 100 due grants among 2,000 active
// ones, each due grant one revoke fan-out through the lab's SSM to a model
// host. The baseline, measured in the same run, is one access.Revoke of a
// single grant: per-grant-revoke-ratio is the pass's time per due grant
// over it, so below 1 means the pass's concurrency pays.
//
//	go test -run '^$' -bench Pass -benchtime 3x ./internal/reconcile/
func BenchmarkPass(b *testing.B) {
	const total, due = 2_000, 100
	r := newRig(b, 0)
	n := newCountingNode(r, 9)
	n.delay = 50 * time.Millisecond // a host's time to answer, which the pass's concurrency hides
	caKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(newCA(b).PublicKey())))
	ctx := context.Background()
	seq := 0
	create := func(count int, d time.Duration) {
		start := r.clock.Now()
		for range count {
			seq++
			if _, err := r.ledger.Create(ctx, ledger.Grant{
				ID: fmt.Sprintf("ar-%016x", seq), Requester: "bench@example.com", Reason: "benchmark", Username: fmt.Sprintf("pp-b%d", seq),
				Serial: uint64(seq), CAPublicKey: caKey, IssuedAt: start, ExpiresAt: start.Add(d), State: ledger.Active,
				Targets: []ledger.Target{{InstanceID: n.info.InstanceID, State: ledger.Active}},
			}); err != nil {
				b.Fatal(err)
			}
		}
	}
	create(total-due, 12*time.Hour)
	svc := r.service(b, r.ledger, "reconciler/bench")
	rec, err := New(Config{Ledger: r.ledger, Access: svc, Holder: "reconciler/bench", Now: r.clock.Now})
	if err != nil {
		b.Fatal(err)
	}

	// Baseline: one grant's revoke on its own.
	create(1, time.Minute)
	single, _ := r.ledger.Get(ctx, fmt.Sprintf("ar-%016x", seq))
	start := time.Now()
	if err := svc.Revoke(ctx, "reconciler/bench", access.FromRecord(single)); err != nil {
		b.Fatal(err)
	}
	baseline := time.Since(start)

	var passing time.Duration
	for b.Loop() {
		b.StopTimer()
		create(due, time.Minute)
		r.clock.Advance(2 * time.Minute)
		b.StartTimer()
		start := time.Now()
		rep, err := rec.Pass(ctx)
		passing += time.Since(start)
		if err != nil || rep.Revoked != due {
			b.Fatalf("pass: %+v, %v; want %d revoked", rep, err, due)
		}
	}
	perGrant := passing / time.Duration(b.N*due)
	b.ReportMetric(float64(perGrant.Microseconds()), "µs/due-grant")
	b.ReportMetric(float64(perGrant)/float64(baseline), "per-grant-revoke-ratio")
}
