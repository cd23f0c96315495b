package ledger

import (
	"context"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// BenchmarkDuePass measures one reconciler pass: ListDue, then read every
// due grant. The store holds n grants of which 1,000 are due, n/5 are open
// and the rest closed history. The baseline, measured once on the same
// data, is the pass a ledger without the due index would make: list every
// active grant and pick the due ones. The emulators hold 10,000 grants
// instead of 100,000 so that loading them takes seconds, not many minutes;
// the pass reads the due index only, so its cost does not follow n
// (-ledger.emulator-grants=100000 shows it).
//
//	go test -run '^$' -bench DuePass -benchtime 20x ./internal/ledger/
func BenchmarkDuePass(b *testing.B) {
	sizes := map[string]int{"sqlite": 100_000, "moto": *emulatorGrants, "dynalite": *emulatorGrants}
	const due = 1_000
	for _, bc := range backendCases() {
		b.Run(fmt.Sprintf("%s/grants=%d/due=%d", bc.name, sizes[bc.name], due), func(b *testing.B) {
			c := newClock()
			l := bc.open(b, Options{Now: c.Now})
			now := c.Now()
			loadGrants(b, l, sizes[bc.name], due, now)
			ctx := context.Background()

			var listing time.Duration
			pass := func() int {
				start := time.Now()
				gs, err := l.ListDue(ctx, now)
				listing += time.Since(start)
				if err != nil {
					b.Fatal(err)
				}
				for _, g := range gs {
					if _, err := l.Get(ctx, g.ID); err != nil {
						b.Fatal(err)
					}
				}
				return len(gs)
			}
			if n := pass(); n != due {
				b.Fatalf("the pass found %d due grants, want %d", n, due)
			}
			start := time.Now()
			active, err := l.List(ctx, Active)
			if err != nil {
				b.Fatal(err)
			}
			found := 0
			for _, g := range active {
				if !g.ExpiresAt.After(now) {
					found++
					if _, err := l.Get(ctx, g.ID); err != nil {
						b.Fatal(err)
					}
				}
			}
			scan := time.Since(start)
			if found != due {
				b.Fatalf("the scan found %d due grants, want %d", found, due)
			}

			listing = 0
			b.ResetTimer()
			for b.Loop() {
				pass()
			}
			perPass := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64((listing/time.Duration(b.N)).Microseconds())/1000, "ms/list-due")
			b.ReportMetric(float64(perPass.Microseconds())/1000, "ms/pass")
			b.ReportMetric(float64(perPass.Microseconds())/due, "µs/due-grant")
			b.ReportMetric(float64(scan)/float64(perPass), "x-faster-than-scan")
		})
	}
}

var emulatorGrants = flag.Int("ledger.emulator-grants", 10_000, "grants BenchmarkDuePass loads into the DynamoDB emulators")

// loadGrants writes n grants straight to the backend (a Create per grant
// would make loading, not the pass, the benchmark): due of them active
// with a window ended a minute before now, n/5 open in all, the rest
// revoked.
func loadGrants(b *testing.B, l *Ledger, n, due int, now time.Time) {
	b.Helper()
	gs := make([]Grant, n)
	for i := range gs {
		state, issued, d := Revoked, now.Add(-48*time.Hour), time.Hour
		switch {
		case i < due:
			state, issued = Active, now.Add(-time.Hour-time.Minute)
		case i < n/5:
			state, issued = Active, now.Add(-time.Minute)
		}
		g := testGrant(fmt.Sprintf("g-%07d", i), issued, d, state)
		g.Version, g.CreatedAt, g.UpdatedAt = 1, issued, issued
		g.DueAt = l.dueAt(&g)
		g.normalize()
		gs[i] = g
	}
	ctx := context.Background()
	switch be := l.b.(type) {
	case *sqliteBackend:
		tx, err := be.db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO grants (`+grantColumns+`) VALUES (`+grantPlaceholders+`)`)
		if err != nil {
			b.Fatal(err)
		}
		for i := range gs {
			args, err := grantArgs(&gs[i])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				b.Fatal(err)
			}
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	case *dynamoBackend:
		batches := make(chan []Grant)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for batch := range batches {
					writeBatch(b, be, batch)
				}
			})
		}
		for i := 0; i < len(gs); i += 25 {
			batches <- gs[i:min(i+25, len(gs))]
		}
		close(batches)
		wg.Wait()
	}
}

func writeBatch(b *testing.B, d *dynamoBackend, gs []Grant) {
	var reqs []types.WriteRequest
	for i := range gs {
		it, err := grantItem(&gs[i])
		if err != nil {
			b.Error(err)
			return
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: it}})
	}
	for len(reqs) > 0 {
		out, err := d.c.BatchWriteItem(context.Background(), &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]types.WriteRequest{d.table: reqs},
		})
		if err != nil {
			b.Error(err)
			return
		}
		reqs = out.UnprocessedItems[d.table]
	}
}

// BenchmarkHostRecordings measures what a collection asks the ledger
// before it runs on a host: the host's recordings (5 of them), in a ledger
// holding 10 recordings of other hosts and in one holding 1,000, read
// alternately. A read that is proportional to what it returns costs the
// same in both (x-1000/10 near 1); the full listing a collection used to
// filter in Go, measured on the 1,000, is the baseline
// (x-faster-than-full-listing). Not on moto, whose index queries look at
// every item of the table, as its full listing does.
//
//	go test -run '^$' -bench HostRecordings -benchtime 200x ./internal/ledger/
func BenchmarkHostRecordings(b *testing.B) {
	const own = 5
	for _, bc := range backendCases() {
		if bc.name == "moto" {
			continue
		}
		b.Run(bc.name, func(b *testing.B) {
			c := newClock()
			ctx := context.Background()
			now := c.Now()
			load := func(others int) *Ledger {
				l := bc.open(b, Options{Now: c.Now})
				put := func(request, instance string, i int) {
					session := fmt.Sprintf("20261124-090000-%06d", i)
					if err := l.PutRecording(ctx, testRecording(request, instance, session, now, now.Add(24*time.Hour))); err != nil {
						b.Fatal(err)
					}
				}
				for i := range own {
					put(fmt.Sprintf("req-%d", i), "i-target", i)
				}
				for i := range others {
					put(fmt.Sprintf("req-%d", i/4), fmt.Sprintf("i-%04d", i%250), i)
				}
				return l
			}
			small, large := load(10), load(1_000)
			read := func(l *Ledger) time.Duration {
				start := time.Now()
				rs, err := l.Recordings(ctx, RecordingFilter{InstanceID: "i-target"})
				if err != nil || len(rs) != own {
					b.Fatalf("the host's recordings: %d, %v; want %d", len(rs), err, own)
				}
				return time.Since(start)
			}
			const fullReads = 5
			start := time.Now()
			for range fullReads {
				all, err := large.Recordings(ctx, RecordingFilter{})
				if err != nil {
					b.Fatal(err)
				}
				found := 0
				for _, r := range all {
					if r.InstanceID == "i-target" {
						found++
					}
				}
				if found != own {
					b.Fatalf("the full listing has %d of the host's recordings, want %d", found, own)
				}
			}
			full := time.Since(start) / fullReads

			var amongSmall, amongLarge time.Duration
			b.ResetTimer()
			for b.Loop() {
				amongSmall += read(small)
				amongLarge += read(large)
			}
			n := time.Duration(b.N)
			b.ReportMetric(float64((amongSmall/n).Microseconds())/1000, "ms/read-among-10")
			b.ReportMetric(float64((amongLarge/n).Microseconds())/1000, "ms/read-among-1000")
			b.ReportMetric(float64(amongLarge)/float64(amongSmall), "x-1000/10")
			b.ReportMetric(float64(full)/float64(amongLarge/n), "x-faster-than-full-listing")
		})
	}
}
