package ledger_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// A grant's life as the provider and a reconciler write it.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ledger-example")
	defer os.RemoveAll(dir)
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	l, err := ledger.Open(ctx, "sqlite://"+filepath.Join(dir, "ledger.db"), ledger.Options{Now: func() time.Time { return now }})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	// The provider: record the grant before touching any host.
	g := must(l.Create(ctx, ledger.Grant{
		ID: "g-1", Requester: "alice@example.com", Reason: "INC-1234", Username: "pp-x7k2",
		Targets:  []ledger.Target{{InstanceID: "i-0123456789abcdef0", State: ledger.Provisioning}},
		IssuedAt: now, ExpiresAt: now.Add(time.Hour), State: ledger.Provisioning,
	}))
	must(l.Append(ctx, ledger.Event{Actor: "alice@example.com", Action: ledger.ActionRequested, GrantID: g.ID, Subject: g.Requester}))
	g.State, g.Targets[0].State = ledger.Active, ledger.Active
	g = must(l.Update(ctx, g))
	must(l.Append(ctx, ledger.Event{Actor: "alice@example.com", Action: ledger.ActionProvisioned, GrantID: g.ID, Target: "i-0123456789abcdef0", Subject: g.Requester}))

	// A reconciler, after the window: take the lease, revoke, record.
	now = now.Add(61 * time.Minute)
	due := must(l.ListDue(ctx, now))
	for _, d := range due {
		g, err := l.Acquire(ctx, d.ID, "reconciler/host-a", 5*time.Minute)
		if err != nil {
			continue // another reconciler has it
		}
		// ... revoke on every target through the access package ...
		g.State, g.Targets[0].State = ledger.Expired, ledger.Expired
		if g, err = l.Update(ctx, g); err != nil {
			continue
		}
		must(l.Append(ctx, ledger.Event{Actor: "reconciler/host-a", Action: ledger.ActionExpired, GrantID: g.ID, Target: "i-0123456789abcdef0", Subject: g.Requester}))
		must(l.Release(ctx, g.ID, "reconciler/host-a"))
	}

	g = must(l.Get(ctx, "g-1"))
	events := must(l.Events(ctx, ledger.Filter{GrantID: "g-1"}))
	fmt.Println(g.State, len(events), "events, chain ok:", l.Verify(ctx) == nil)
	// Output: expired 3 events, chain ok: true
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
