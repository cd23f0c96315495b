package reconcile

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// A pass announces an active window once it ends within the ledger's
// expiry notice, once per window, and touches nothing else: no host is
// asked (this reconciler's fleet reaches none).
func TestPassesAnnounceWindowsEndingSoon(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	led, err := ledger.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "ledger.db"), ledger.Options{Now: clk.Now, Announce: true, ExpiryNotice: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	rec := reconcilerOf(t, led, clk, "reconciler/test")
	g, err := led.Create(ctx, ledger.Grant{ID: "ar-1", Requester: "alice", State: ledger.Active, IssuedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour),
		Targets: []ledger.Target{{InstanceID: "i-0123456789abcdef0", State: ledger.Active}}})
	if err != nil {
		t.Fatal(err)
	}
	passUpToTheEnd(t, rec, clk, g.ExpiresAt)
	got, err := led.Get(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []ledger.NoticeKind
	for _, n := range got.Notices {
		kinds = append(kinds, n.Kind)
	}
	if want := []ledger.NoticeKind{ledger.NoticeGranted, ledger.NoticeExpiringSoon}; !slices.Equal(kinds, want) || got.Notices[1].By != "reconciler/test" {
		t.Errorf("notices %v (by %q), want %v by the reconciler", kinds, got.Notices[len(got.Notices)-1].By, want)
	}
}

// A grant written by a ledger that does not announce (the provider or the
// CLI in direct mode) is due only at its window's end; a reconciler whose
// ledger announces still announces that the window ends soon.
func TestPassesAnnounceWindowsEndingSoonOfGrantsWrittenWithoutNotices(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC))
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "ledger.db")
	direct, err := ledger.Open(ctx, url, ledger.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	g, err := direct.Create(ctx, ledger.Grant{ID: "ar-2", Requester: "alice", State: ledger.Active, IssuedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour),
		Targets: []ledger.Target{{InstanceID: "i-0123456789abcdef0", State: ledger.Active}}})
	if err != nil {
		t.Fatal(err)
	}
	led, err := ledger.Open(ctx, url, ledger.Options{Now: clk.Now, Announce: true, ExpiryNotice: 15 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer led.Close()
	rec := reconcilerOf(t, led, clk, "reconciler/cron")
	passUpToTheEnd(t, rec, clk, g.ExpiresAt)
	got, err := led.Get(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Notices) != 1 || got.Notices[0].Kind != ledger.NoticeExpiringSoon || !got.Outbox {
		t.Errorf("notices %+v (in the outbox: %v), want one expiring-soon notice waiting to be sent", got.Notices, got.Outbox)
	}
}

// reconcilerOf is a reconciler on led whose fleet reaches no host.
func reconcilerOf(t *testing.T, led *ledger.Ledger, clk *clock.Fake, holder string) *Reconciler {
	t.Helper()
	nowhere := fleet.New(ssmsdk.New(ssmsdk.Options{Region: "us-east-1", BaseEndpoint: new("http://127.0.0.1:1")}), fleet.Options{})
	core, err := access.New(access.Config{Fleet: nowhere, Now: clk.Now, Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := New(Config{Ledger: led, Access: core, Holder: holder, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// passUpToTheEnd passes with the clock an hour, 16, 14 and 13 minutes
// before expires (a window of an hour, a 15-minute notice): only the pass
// at 14 minutes announces it.
func passUpToTheEnd(t *testing.T, rec *Reconciler, clk *clock.Fake, expires time.Time) {
	t.Helper()
	for _, step := range []struct {
		advance time.Duration
		warned  int
	}{{0, 0}, {44 * time.Minute, 0}, {2 * time.Minute, 1}, {time.Minute, 0}} {
		clk.Advance(step.advance)
		rep, err := rec.Pass(context.Background())
		if err != nil || rep.Warned != step.warned || rep.Revoked != 0 {
			t.Errorf("pass at %s before the end: %+v, %v; want %d warned, none revoked", expires.Sub(clk.Now()), rep, err, step.warned)
		}
	}
}
