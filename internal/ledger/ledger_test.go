package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
)

// forEachBackend runs test against a fresh ledger on every backend.
func forEachBackend(t *testing.T, o Options, test func(t *testing.T, l *Ledger)) {
	for _, bc := range backendCases() {
		t.Run(bc.name, func(t *testing.T) { test(t, bc.open(t, o)) })
	}
}

// forEachAtomicBackend runs a race test against every backend whose
// conditional writes are atomic, as DynamoDB's are. The others (see
// backendCase.racy) have no subtest: a race lost there would be the
// emulator's, not the ledger's.
func forEachAtomicBackend(t *testing.T, o Options, test func(t *testing.T, l *Ledger)) {
	for _, bc := range backendCases() {
		if bc.racy == "" {
			t.Run(bc.name, func(t *testing.T) { test(t, bc.open(t, o)) })
		}
	}
}

func testGrant(id string, issued time.Time, d time.Duration, s State) Grant {
	return Grant{
		ID: id, Requester: "alice@example.com", Groups: []string{"ops", "on call: EMEA"}, Reason: "INC-1234 disk full", Username: "pp-" + id, Sudo: true,
		Targets: []Target{
			{InstanceID: "i-0123456789abcdef0", State: s, Address: "10.0.1.5"},
			{InstanceID: "i-0fedcba9876543210", State: s, Detail: "host did not answer"},
		},
		Serial: 0xfedcba9876543210, CAPublicKey: "ssh-ed25519 AAAACA", PublicKey: "ssh-ed25519 AAAAUSER",
		Certificate: "ssh-ed25519-cert-v01@openssh.com AAAACERT",
		IssuedAt:    issued, ExpiresAt: issued.Add(d), State: s,
	}
}

func TestGrants(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		in := testGrant("g-1", c.Now(), time.Hour, Provisioning)
		created, err := l.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if created.Version != 1 || !created.CreatedAt.Equal(c.Now()) || !created.DueAt.Equal(c.Now().Add(defaultStuckAfter)) {
			t.Errorf("created grant: version %d, created %v, due %v; want 1, now, now+StuckAfter", created.Version, created.CreatedAt, created.DueAt)
		}
		got, err := l.Get(ctx, "g-1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, created) {
			t.Errorf("Get returned\n%+v\nwant\n%+v", got, created)
		}

		if _, err := l.Create(ctx, in); !errors.Is(err, ErrExists) {
			t.Errorf("second Create of g-1: %v, want ErrExists", err)
		}
		if _, err := l.Get(ctx, "g-none"); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get of a missing grant: %v, want ErrNotFound", err)
		}

		// Two writers read version 1; the second to write must be refused.
		provider, reconciler := got, got
		provider.State = Active
		for i := range provider.Targets {
			provider.Targets[i].State = Active
		}
		c.Advance(time.Minute)
		updated, err := l.Update(ctx, provider)
		if err != nil {
			t.Fatal(err)
		}
		if updated.Version != 2 || !updated.DueAt.Equal(in.ExpiresAt) {
			t.Errorf("updated: version %d, due %v; want 2 and the window's end %v", updated.Version, updated.DueAt, in.ExpiresAt)
		}
		reconciler.State = Revoking
		_, err = l.Update(ctx, reconciler)
		var conflict *ConflictError
		if !errors.As(err, &conflict) || !errors.Is(err, ErrConflict) || conflict.GrantID != "g-1" {
			t.Fatalf("stale Update: %v, want a *ConflictError for g-1", err)
		}
		if got, _ := l.Get(ctx, "g-1"); got.State != Active || got.Version != 2 {
			t.Errorf("after the refused update the grant is %s at version %d, want active at 2", got.State, got.Version)
		}
		ghost := testGrant("g-ghost", c.Now(), time.Hour, Active)
		ghost.Version = 1
		if _, err := l.Update(ctx, ghost); !errors.Is(err, ErrNotFound) {
			t.Errorf("Update of a missing grant: %v, want ErrNotFound", err)
		}

		if _, err := l.Create(ctx, testGrant("g-2", c.Now(), 2*time.Hour, Active)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Create(ctx, testGrant("g-3", c.Now(), time.Hour, Failed)); err != nil {
			t.Fatal(err)
		}
		for state, want := range map[State][]string{Active: {"g-1", "g-2"}, Failed: {"g-3"}, Revoked: nil} {
			list, err := l.List(ctx, state)
			if err != nil {
				t.Fatal(err)
			}
			if ids := grantIDs(list); !slices.Equal(ids, want) {
				t.Errorf("List(%s) = %v, want %v", state, ids, want)
			}
		}
	})
}

func grantIDs(gs []Grant) []string {
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestCreatedAtSurvivesUpdates: the access core writes each update from
// a record it builds afresh, with no creation time; the ledger keeps the
// one Create wrote.
func TestCreatedAtSurvivesUpdates(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		created, err := l.Create(ctx, testGrant("g-ext", c.Now(), time.Hour, Active))
		if err != nil {
			t.Fatal(err)
		}
		c.Advance(20 * time.Minute)
		extended := testGrant("g-ext", created.IssuedAt, 3*time.Hour, Active)
		extended.Version = created.Version
		got, err := l.Update(ctx, extended)
		if err != nil {
			t.Fatal(err)
		}
		if !got.CreatedAt.Equal(created.CreatedAt) {
			t.Errorf("Update returned created_at %v, want %v", got.CreatedAt, created.CreatedAt)
		}
		c.Advance(time.Minute)
		// A lease and a closing write go through other paths.
		if _, err := l.Acquire(ctx, "g-ext", "reconciler/a", time.Minute); err != nil {
			t.Fatal(err)
		}
		closing, _ := l.Get(ctx, "g-ext")
		closing.State, closing.CreatedAt = Revoked, time.Time{}
		if _, err := l.Update(ctx, closing); err != nil {
			t.Fatal(err)
		}
		stored, err := l.Get(ctx, "g-ext")
		if err != nil {
			t.Fatal(err)
		}
		if !stored.CreatedAt.Equal(created.CreatedAt) || !stored.ExpiresAt.Equal(extended.ExpiresAt) || stored.State != Revoked {
			t.Errorf("after an extension and a revoke: created %v, expires %v, %s; want created %v, expires %v, revoked",
				stored.CreatedAt, stored.ExpiresAt, stored.State, created.CreatedAt, extended.ExpiresAt)
		}
		if !stored.UpdatedAt.Equal(c.Now()) || !stored.DueAt.IsZero() || stored.Lease.Holder != "reconciler/a" {
			t.Errorf("after the revoke: updated %v, due %v, lease %+v; want now, none, still held", stored.UpdatedAt, stored.DueAt, stored.Lease)
		}
	})
}

// TestGrantAttributesAreComplete: an update removes what grantAttributes
// names and the grant no longer has; an attribute missing from the list
// would be left behind stale.
func TestGrantAttributesAreComplete(t *testing.T) {
	g := testGrant("g-all", newClock().Now(), time.Hour, Active)
	g.Version, g.Lease = 3, Lease{Holder: "reconciler/a", Until: g.ExpiresAt}
	g.CreatedAt, g.UpdatedAt, g.DueAt = g.IssuedAt, g.IssuedAt, g.ExpiresAt
	g.Approval = &Approval{Required: 1, Deadline: g.ExpiresAt}
	it, err := grantItem(&g)
	if err != nil {
		t.Fatal(err)
	}
	for name := range it {
		if name != "pk" && name != "sk" && !slices.Contains(grantAttributes, name) {
			t.Errorf("grantItem writes %q, which grantAttributes does not name", name)
		}
	}
}

// TestFailedRevokesAreRetriedWithBackoff: a revoke that ended without
// reaching a target is due again at once, then after a pause that doubles
// with each failure up to StuckAfter; a revoke under way waits StuckAfter.
func TestFailedRevokesAreRetriedWithBackoff(t *testing.T) {
	c := newClock()
	stuck := 15 * time.Minute
	forEachBackend(t, Options{Now: c.Now, StuckAfter: stuck}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		g, err := l.Create(ctx, testGrant("g-retry", c.Now(), 8*time.Hour, Revoking))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			failures [2]int // of the two revoking targets
			wait     time.Duration
		}{
			{[2]int{1, 1}, 0},
			{[2]int{2, 1}, time.Minute},
			{[2]int{3, 3}, 2 * time.Minute},
			{[2]int{5, 1}, 8 * time.Minute},
			{[2]int{6, 6}, stuck},
			{[2]int{40, 1}, stuck},
			{[2]int{4, 0}, stuck}, // the second target is being revoked now
			{[2]int{0, 0}, stuck},
		} {
			c.Advance(time.Minute)
			g.Targets[0].Failures, g.Targets[1].Failures = tc.failures[0], tc.failures[1]
			if g, err = l.Update(ctx, g); err != nil {
				t.Fatal(err)
			}
			if want := c.Now().Add(tc.wait); !g.DueAt.Equal(want) {
				t.Errorf("failures %v: due %v after the write, want %v", tc.failures, g.DueAt.Sub(c.Now()), tc.wait)
			}
			due, err := l.ListDue(ctx, c.Now().Add(tc.wait))
			if err != nil {
				t.Fatal(err)
			}
			if early, _ := l.ListDue(ctx, c.Now().Add(tc.wait-time.Second)); len(due) != 1 || len(early) != 0 {
				t.Errorf("failures %v: listed due %d times at its time and %d a second before, want 1 and 0", tc.failures, len(due), len(early))
			}
		}
		stored, _ := l.Get(ctx, "g-retry")
		if stored.Targets[0].Failures != 0 || stored.RevokeFailures() != 0 {
			t.Errorf("stored failures %+v", stored.Targets)
		}
	})
}

func TestListDue(t *testing.T) {
	c := newClock()
	stuck := 10 * time.Minute
	forEachBackend(t, Options{Now: c.Now, StuckAfter: stuck}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		start := c.Now()
		create := func(id string, d time.Duration, s State) {
			t.Helper()
			if _, err := l.Create(ctx, testGrant(id, start, d, s)); err != nil {
				t.Fatal(err)
			}
		}
		create("ends-soon", 30*time.Minute, Active)
		create("ends-late", 8*time.Hour, Active)
		create("interrupted-apply", 8*time.Hour, Provisioning)
		create("interrupted-destroy", 8*time.Hour, Revoking)
		create("already-revoked", 5*time.Minute, Revoked)
		create("never-provisioned", 5*time.Minute, Failed)
		c.Advance(5 * time.Minute)
		create("apply-in-progress", 8*time.Hour, Provisioning)

		cases := []struct {
			after time.Duration
			want  []string
		}{
			{0, nil},
			{stuck, []string{"interrupted-apply", "interrupted-destroy"}},
			{31 * time.Minute, []string{"ends-soon", "interrupted-apply", "interrupted-destroy", "apply-in-progress"}},
		}
		for _, tc := range cases {
			due, err := l.ListDue(ctx, start.Add(tc.after))
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if ids := grantIDs(due); !slices.Equal(ids, want) {
				t.Errorf("due %s after the start: %v, want %v", tc.after, ids, want)
			}
		}

		// Closing a grant takes it off the due list for good: it may not
		// be reopened, only annotated.
		g, err := l.Get(ctx, "ends-soon")
		if err != nil {
			t.Fatal(err)
		}
		g.State = Expired
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
		reopened := g
		reopened.State = Active
		if _, err := l.Update(ctx, reopened); !errors.Is(err, ErrClosed) {
			t.Errorf("reopening an expired grant: %v, want ErrClosed", err)
		}
		g.Targets[1].Detail = "host came back; user removed"
		if _, err := l.Update(ctx, g); err != nil {
			t.Errorf("annotating an expired grant: %v", err)
		}
		due, err := l.ListDue(ctx, start.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(grantIDs(due), "ends-soon") {
			t.Error("an expired grant is still due")
		}
	})
}

func TestLeases(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		if _, err := l.Create(ctx, testGrant("g-1", c.Now(), time.Hour, Active)); err != nil {
			t.Fatal(err)
		}
		a, b := "reconciler/a", "reconciler/b"
		g, err := l.Acquire(ctx, "g-1", a, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if g.Lease.Holder != a || !g.Lease.Until.Equal(c.Now().Add(time.Minute)) || g.Version != 2 {
			t.Errorf("A's lease: %+v at version %d", g.Lease, g.Version)
		}

		_, err = l.Acquire(ctx, "g-1", b, time.Minute)
		var held *LeaseHeldError
		if !errors.As(err, &held) || held.Holder != a {
			t.Fatalf("B took a held lease: %v, want a *LeaseHeldError naming %s", err, a)
		}
		if _, err := l.Release(ctx, "g-1", b); !errors.Is(err, ErrLeaseHeld) {
			t.Errorf("B released A's lease: %v", err)
		}

		c.Advance(30 * time.Second)
		if g, err = l.Acquire(ctx, "g-1", a, time.Minute); err != nil {
			t.Fatalf("A could not extend its own lease: %v", err)
		}
		c.Advance(59 * time.Second)
		if _, err := l.Acquire(ctx, "g-1", b, time.Minute); !errors.Is(err, ErrLeaseHeld) {
			t.Fatalf("B took the lease before A's extension ran out: %v", err)
		}

		// A dies; its lease runs out and B picks up the work.
		c.Advance(2 * time.Second)
		gb, err := l.Acquire(ctx, "g-1", b, time.Minute)
		if err != nil {
			t.Fatalf("B could not take a lease that ran out: %v", err)
		}
		if gb.Lease.Holder != b {
			t.Errorf("lease holder %q, want %q", gb.Lease.Holder, b)
		}
		// A, back from the dead, can neither write from what it read nor
		// release B's lease.
		g.State = Revoked
		if _, err := l.Update(ctx, g); !errors.Is(err, ErrConflict) {
			t.Errorf("A updated the grant after losing its lease: %v", err)
		}
		if _, err := l.Release(ctx, "g-1", a); !errors.Is(err, ErrLeaseHeld) {
			t.Errorf("A released B's lease: %v", err)
		}

		gb.State = Revoked
		gb, err = l.Update(ctx, gb)
		if err != nil {
			t.Fatal(err)
		}
		released, err := l.Release(ctx, "g-1", b)
		if err != nil {
			t.Fatal(err)
		}
		if released.Lease != (Lease{}) || released.State != Revoked || released.Version != gb.Version+1 {
			t.Errorf("after release: %+v, state %s, version %d", released.Lease, released.State, released.Version)
		}
		if _, err := l.Acquire(ctx, "g-none", a, time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("lease on a missing grant: %v, want ErrNotFound", err)
		}
	})
}

// auditScript appends a small realistic trail: two grants, two people.
func auditScript(t testing.TB, l *Ledger, c *clock.Fake) []Event {
	t.Helper()
	script := []Event{
		{Actor: "alice@example.com", Action: ActionRequested, GrantID: "g-1", Subject: "alice@example.com", Detail: "INC-1234"},
		{Actor: "policy", Action: ActionAuthorized, GrantID: "g-1", Subject: "alice@example.com"},
		{Actor: "alice@example.com", Action: ActionProvisioned, GrantID: "g-1", Target: "i-1", Subject: "alice@example.com"},
		{Actor: "alice@example.com", Action: ActionProvisionFailed, GrantID: "g-1", Target: "i-2", Subject: "alice@example.com", Detail: "offline"},
		{Actor: "bob@example.com", Action: ActionRequested, GrantID: "g-2", Subject: "bob@example.com"},
		{Actor: "bob@example.com", Action: ActionProvisioned, GrantID: "g-2", Target: "i-2", Subject: "bob@example.com"},
		{Actor: "reconciler/host-a", Action: ActionExpired, GrantID: "g-1", Target: "i-1", Subject: "alice@example.com"},
		{Actor: "reconciler/host-a", Action: ActionSwept, Target: "i-2", Detail: "pp-stray removed"},
	}
	var out []Event
	for _, e := range script {
		c.Advance(time.Minute)
		got, err := l.Append(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, got)
	}
	return out
}

func TestAudit(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		start := c.Now()
		all := auditScript(t, l, c)
		for i, e := range all {
			if e.Seq != int64(i+1) || e.Hash == "" || (i > 0 && e.PrevHash != all[i-1].Hash) {
				t.Fatalf("event %d: seq %d, prev %s, hash %s", i, e.Seq, e.PrevHash, e.Hash)
			}
		}
		cases := []struct {
			name string
			f    Filter
			want []int64
		}{
			{"everything", Filter{}, []int64{1, 2, 3, 4, 5, 6, 7, 8}},
			{"person as actor or subject", Filter{Person: "alice@example.com"}, []int64{1, 2, 3, 4, 7}},
			{"reconciler", Filter{Person: "reconciler/host-a"}, []int64{7, 8}},
			{"grant", Filter{GrantID: "g-2"}, []int64{5, 6}},
			{"target", Filter{Target: "i-2"}, []int64{4, 6, 8}},
			{"time range", Filter{Since: start.Add(3 * time.Minute), Until: start.Add(5 * time.Minute)}, []int64{3, 4}},
			{"person and target", Filter{Person: "bob@example.com", Target: "i-2"}, []int64{6}},
			{"nobody", Filter{Person: "mallory"}, nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got, err := l.Events(ctx, tc.f)
				if err != nil {
					t.Fatal(err)
				}
				var seqs []int64
				for _, e := range got {
					seqs = append(seqs, e.Seq)
					if !reflect.DeepEqual(e, all[e.Seq-1]) {
						t.Errorf("listed %+v, appended %+v", e, all[e.Seq-1])
					}
				}
				if !slices.Equal(seqs, tc.want) {
					t.Errorf("events %v, want %v", seqs, tc.want)
				}
				// The same newest first, and the newest two alone: the
				// reader stops the read.
				var newest []int64
				read := 0
				if err := l.NewestEvents(ctx, tc.f, func(e Event) bool {
					read++
					if !reflect.DeepEqual(e, all[e.Seq-1]) {
						t.Errorf("read %+v, appended %+v", e, all[e.Seq-1])
					}
					newest = append(newest, e.Seq)
					return len(newest) < 2
				}); err != nil {
					t.Fatal(err)
				}
				want := slices.Clone(tc.want)
				slices.Reverse(want)
				if want = want[:min(2, len(want))]; !slices.Equal(newest, want) || read != len(want) {
					t.Errorf("newest events %v (%d read), want %v", newest, read, want)
				}
			})
		}

		var buf bytes.Buffer
		if err := l.Export(ctx, &buf, Filter{}); err != nil {
			t.Fatal(err)
		}
		// A SIEM receiving the export can check the chain on its own.
		exported := buf.String()
		last, err := VerifyExport(strings.NewReader(exported))
		if err != nil {
			t.Fatalf("VerifyExport of the export: %v", err)
		}
		if n := strings.Count(exported, "\n"); n != len(all) {
			t.Errorf("exported %d lines, want %d", n, len(all))
		}
		head, err := l.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(head, all[len(all)-1]) || !reflect.DeepEqual(last, head) {
			t.Errorf("Head %+v and the export's last event %+v, want %+v", head, last, all[len(all)-1])
		}
		// An export missing a line in the middle fails where it was cut.
		lines := strings.SplitAfter(exported, "\n")
		cut := strings.Join(slices.Delete(slices.Clone(lines), 2, 3), "")
		var broken *BrokenChainError
		if _, err := VerifyExport(strings.NewReader(cut)); !errors.As(err, &broken) || broken.Seq != 3 {
			t.Errorf("VerifyExport of an export missing event 3: %v", err)
		}
		if err := l.Verify(ctx); err != nil {
			t.Errorf("Verify of an untouched trail: %v", err)
		}
	})
}

func TestVerifyDetectsTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, l *Ledger)
		first  int64
	}{
		{"edited detail", func(t *testing.T, l *Ledger) { editEvent(t, l, 4, "online") }, 4},
		{"deleted event", func(t *testing.T, l *Ledger) { deleteEvent(t, l, 3) }, 3},
		{"reordered events", func(t *testing.T, l *Ledger) { swapEvents(t, l, 5, 6) }, 5},
		{"deleted first event", func(t *testing.T, l *Ledger) { deleteEvent(t, l, 1) }, 1},
	}
	for _, bc := range backendCases() {
		t.Run(bc.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					c := newClock()
					l := bc.open(t, Options{Now: c.Now})
					auditScript(t, l, c)
					tc.tamper(t, l)
					err := l.Verify(context.Background())
					var broken *BrokenChainError
					if !errors.As(err, &broken) {
						t.Fatalf("Verify after tampering: %v, want a *BrokenChainError", err)
					}
					if broken.Seq != tc.first {
						t.Errorf("Verify named event %d (%v), want %d", broken.Seq, err, tc.first)
					}
					t.Log(err)
				})
			}
		})
	}
}

// Reconcilers racing over the same due grants each take a different
// share, and every grant is taken exactly once: no revocation is doubled.
func TestRacingReconcilersTakeEachGrantOnce(t *testing.T) {
	const reconcilers, grants = 4, 12
	c := newClock()
	forEachAtomicBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		for i := range grants {
			if _, err := l.Create(ctx, testGrant(fmt.Sprintf("g-%02d", i), c.Now().Add(-2*time.Hour), time.Hour, Active)); err != nil {
				t.Fatal(err)
			}
		}
		due, err := l.ListDue(ctx, c.Now())
		if err != nil || len(due) != grants {
			t.Fatalf("ListDue: %d grants, %v; want %d", len(due), err, grants)
		}
		var mu sync.Mutex
		takenBy := map[string][]string{}
		var wg sync.WaitGroup
		for r := range reconcilers {
			holder := fmt.Sprintf("reconciler/%d", r)
			wg.Go(func() {
				for _, g := range due {
					_, err := l.Acquire(ctx, g.ID, holder, time.Minute)
					if errors.Is(err, ErrLeaseHeld) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					takenBy[g.ID] = append(takenBy[g.ID], holder)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for _, g := range due {
			if holders := takenBy[g.ID]; len(holders) != 1 {
				t.Errorf("grant %s was taken by %v, want exactly one reconciler", g.ID, holders)
			}
		}
	})
}

func TestConcurrentAppendersKeepOneChain(t *testing.T) {
	const writers, each = 8, 15
	forEachAtomicBackend(t, Options{}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		if head, err := l.Head(ctx); err != nil || head.Seq != 0 {
			t.Fatalf("a new trail ends at event %d (%v), want empty", head.Seq, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					_, err := l.Append(ctx, Event{Actor: fmt.Sprintf("reconciler/%d", w), Action: ActionRevoked, GrantID: fmt.Sprintf("g-%d-%d", w, i)})
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		events, err := l.Events(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != writers*each {
			t.Errorf("%d events stored, want %d", len(events), writers*each)
		}
		if err := l.Verify(ctx); err != nil {
			t.Errorf("Verify after concurrent appends: %v", err)
		}
	})
}

// The tamper helpers write the backend's storage directly, as someone with
// access to the database file or table could.

func editEvent(t *testing.T, l *Ledger, seq int64, detail string) {
	t.Helper()
	switch b := l.b.(type) {
	case *sqliteBackend:
		mustExec(t, b, `UPDATE audit SET detail = ? WHERE seq = ?`, detail, seq)
	case *dynamoBackend:
		_, err := b.c.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
			TableName: &b.table, Key: map[string]types.AttributeValue{"pk": str(auditPK), "sk": num(seq)},
			UpdateExpression:          aws.String("SET detail = :d"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":d": str(detail)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func deleteEvent(t *testing.T, l *Ledger, seq int64) {
	t.Helper()
	switch b := l.b.(type) {
	case *sqliteBackend:
		mustExec(t, b, `DELETE FROM audit WHERE seq = ?`, seq)
	case *dynamoBackend:
		_, err := b.c.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
			TableName: &b.table, Key: map[string]types.AttributeValue{"pk": str(auditPK), "sk": num(seq)},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// swapEvents exchanges the positions of events a and b.
func swapEvents(t *testing.T, l *Ledger, a, b int64) {
	t.Helper()
	switch be := l.b.(type) {
	case *sqliteBackend:
		mustExec(t, be, `UPDATE audit SET seq = -1 WHERE seq = ?`, a)
		mustExec(t, be, `UPDATE audit SET seq = ? WHERE seq = ?`, a, b)
		mustExec(t, be, `UPDATE audit SET seq = ? WHERE seq = -1`, b)
	case *dynamoBackend:
		ctx := context.Background()
		get := func(seq int64) item {
			out, err := be.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &be.table, Key: map[string]types.AttributeValue{"pk": str(auditPK), "sk": num(seq)}})
			if err != nil || out.Item == nil {
				t.Fatalf("reading event %d: %v", seq, err)
			}
			return out.Item
		}
		ea, eb := get(a), get(b)
		ea["sk"], eb["sk"] = num(b), num(a)
		for _, it := range []item{ea, eb} {
			if _, err := be.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &be.table, Item: it}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func mustExec(t *testing.T, b *sqliteBackend, q string, args ...any) {
	t.Helper()
	res, err := b.db.Exec(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s changed %d rows, want 1", q, n)
	}
}

func TestDynamoDBOpen(t *testing.T) {
	for _, s := range []*server{&moto, &dynalite} {
		t.Run(s.name, func(t *testing.T) {
			endpoint := s.endpointFor(t)
			ctx := context.Background()
			table := fmt.Sprintf("passport-open-%d", tableSeq.Add(1))
			open := func(create bool) *Ledger {
				t.Helper()
				l, err := Open(ctx, "dynamodb://"+table, Options{DynamoDB: DynamoDBOptions{Client: dynamoClient(endpoint), CreateTable: create}})
				if err != nil {
					t.Fatal(err)
				}
				return l
			}

			_, err := open(false).Get(ctx, "g-1")
			if err == nil || !strings.Contains(err.Error(), "do not exist") || !strings.Contains(err.Error(), table) {
				t.Errorf("Get on a missing table: %v, want an error naming the table and saying it does not exist", err)
			}
			first := open(true)
			t.Cleanup(func() {
				_, _ = first.b.(*dynamoBackend).c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table})
			})
			if _, err := first.Create(ctx, testGrant("g-1", time.Now(), time.Hour, Active)); err != nil {
				t.Fatal(err)
			}
			// A second reconciler starting with CreateTable finds the table.
			if _, err := open(true).Get(ctx, "g-1"); err != nil {
				t.Errorf("a second Open with CreateTable: %v", err)
			}
		})
	}
	if _, err := Open(context.Background(), "dynamodb://passport-ledger", Options{}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("Open without a client or region: %v, want an error asking for a region", err)
	}
}

// A create the SDK retried after its answer was lost (the first attempt
// wrote) finds its own item and succeeds; another create of the same id
// still fails. (Seen on moto under load: a first Create of a fresh table
// failed with ErrExists.)
func TestRetriedCreateFindsItsOwnWrite(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		d, ok := l.b.(*dynamoBackend)
		if !ok {
			return // sqlite writes in one transaction: nothing is retried after it
		}
		ctx := context.Background()
		g := testGrant("g-retry", c.Now(), time.Hour, Active)
		g.Version, g.CreatedAt = 1, c.Now()
		if err := d.createGrantAs(ctx, &g, "first"); err != nil {
			t.Fatal(err)
		}
		if err := d.createGrantAs(ctx, &g, "first"); err != nil {
			t.Errorf("the same create again (a retried put): %v, want success", err)
		}
		if err := d.createGrantAs(ctx, &g, "second"); !errors.Is(err, ErrExists) {
			t.Errorf("another create of g-retry: %v, want ErrExists", err)
		}
		if got, err := l.Get(ctx, "g-retry"); err != nil || got.ID != "g-retry" {
			t.Errorf("after the retried create: %+v, %v", got, err)
		}
	})
}
