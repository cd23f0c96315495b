package ledger

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func kinds(ns []Notice) []NoticeKind {
	var out []NoticeKind
	for _, n := range ns {
		out = append(out, n.Kind)
	}
	return out
}

// A request's life, written as the access core writes it, leaves its
// notices in its record in the order things happened, numbered from 1,
// each with who acted; the grant is in the outbox until a deliverer
// settles it, and due for its expiring-soon notice before its window ends.
func TestNoticesFollowARequest(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now, Announce: true}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		in := testGrant("g-life", c.Now(), time.Hour, Pending)
		in.Username, in.Certificate = "", ""
		in.Approval = &Approval{Required: 2, Approvers: []string{"group:admins"}, Deadline: c.Now().Add(30 * time.Minute)}
		in.Cause = Cause{By: "alice@example.com"}
		g, err := l.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if !g.Outbox || len(g.Notices) != 1 || g.Notices[0].Kind != NoticeApprovalNeeded || g.Notices[0].Required != 2 {
			t.Fatalf("a pending request's notices: %+v (outbox %v)", g.Notices, g.Outbox)
		}
		select {
		case <-l.Announcements():
		default:
			t.Error("a write that made a notice did not signal Announcements")
		}

		c.Advance(time.Minute)
		g.Approval.Given = append(g.Approval.Given, Vote{By: "carol", At: c.Now(), Comment: "INC-1 is real"})
		g.Cause = Cause{By: "carol"}
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
		g.Approval.Given = append(g.Approval.Given, Vote{By: "dave", At: c.Now()})
		g.State, g.IssuedAt, g.ExpiresAt = Provisioning, c.Now(), c.Now().Add(time.Hour)
		g.Cause = Cause{By: "dave"}
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
		g.State, g.Cause = Active, Cause{By: "dave"}
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
		// Nothing new to say: no notice, and the version still moves.
		g.Targets[0].Detail = "touched"
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
		if !g.DueAt.Equal(g.ExpiresAt.Add(-DefaultExpiryNotice)) {
			t.Errorf("an active grant not yet warned is due %v, want %v", g.DueAt, g.ExpiresAt.Add(-DefaultExpiryNotice))
		}
		if warned, err := l.WarnExpiry(ctx, g.ID, "reconciler/a"); err != nil || warned {
			t.Errorf("WarnExpiry an hour before the end: %v, %v; want no notice yet", warned, err)
		}
		c.Advance(55 * time.Minute)
		if warned, err := l.WarnExpiry(ctx, g.ID, "reconciler/a"); err != nil || !warned {
			t.Fatalf("WarnExpiry five minutes before the end: %v, %v", warned, err)
		}
		if warned, err := l.WarnExpiry(ctx, g.ID, "reconciler/b"); err != nil || warned {
			t.Errorf("a second WarnExpiry for the same window: %v, %v; want none", warned, err)
		}
		if g, err = l.Get(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
		if !g.DueAt.Equal(g.ExpiresAt) {
			t.Errorf("a warned grant is due %v, want its end %v", g.DueAt, g.ExpiresAt)
		}
		c.Advance(10 * time.Minute)
		g.State, g.Cause = Revoking, Cause{By: "reconciler/a"}
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
		g.State = Expired
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}

		want := []NoticeKind{NoticeApprovalNeeded, NoticeApproved, NoticeApproved, NoticeGranted, NoticeExpiringSoon, NoticeEnded}
		if got := kinds(g.Notices); !slices.Equal(got, want) {
			t.Fatalf("notices %v, want %v", got, want)
		}
		for i, n := range g.Notices {
			if n.Seq != int64(i+1) {
				t.Errorf("notice %d (%s) has seq %d", i, n.Kind, n.Seq)
			}
		}
		if n := g.Notices[1]; n.By != "carol" || n.Detail != "INC-1 is real" || n.Given != 1 || n.Required != 2 {
			t.Errorf("the first approval's notice: %+v", n)
		}
		if n := g.Notices[5]; n.By != "reconciler/a" || n.Detail != "the window ended" {
			t.Errorf("the end's notice: %+v", n)
		}
		if g.NoticeSeq != 6 || g.Notices[0].ID(g.ID) != "g-life.1" {
			t.Errorf("NoticeSeq %d, first id %s", g.NoticeSeq, g.Notices[0].ID(g.ID))
		}

		box, err := l.Outbox(ctx)
		if err != nil || !slices.Equal(grantIDs(box), []string{"g-life"}) {
			t.Fatalf("outbox: %v, %v", grantIDs(box), err)
		}
	})
}

// The delivery record has a version of its own: writing it never moves
// the grant's, a writer's Update never undoes it, and two deliverers
// cannot both write over the same version. Settle takes a grant out of
// the outbox only when no notice came since.
func TestDeliveryRecord(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now, Announce: true}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		in := testGrant("g-box", c.Now(), time.Hour, Provisioning)
		g, err := l.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if g.Outbox {
			t.Error("a grant being provisioned is in the outbox before anything was announced")
		}
		g.State = Active
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
		if !g.Outbox {
			t.Fatal("a granted grant is not in the outbox")
		}
		d, err := l.SetDelivery(ctx, g.ID, Delivery{Holder: "service/a", Until: c.Now().Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.SetDelivery(ctx, g.ID, Delivery{Holder: "service/b"}); !errors.Is(err, ErrConflict) {
			t.Errorf("a second deliverer writing over version 0: %v, want ErrConflict", err)
		}
		d.Sinks = map[string]*Progress{"siem": {Through: g.NoticeSeq}}
		if d, err = l.SetDelivery(ctx, g.ID, d); err != nil {
			t.Fatal(err)
		}
		// A writer that read the grant before the deliveries writes over
		// it; the deliveries stay.
		g.Targets[0].Detail = "touched"
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatalf("Update after deliveries: %v (the delivery record must not move the grant's version)", err)
		}
		if g.Delivery.Version != d.Version || g.Delivery.Sinks["siem"].Through != 1 {
			t.Errorf("after an Update the delivery record is %+v, want version %d through 1", g.Delivery, d.Version)
		}
		if err := l.Settle(ctx, g.ID, g.NoticeSeq, d.Version-1); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.Get(ctx, g.ID); !got.Outbox {
			t.Error("Settle on a stale delivery version took the grant out of the outbox")
		}
		if err := l.Settle(ctx, g.ID, g.NoticeSeq, d.Version); err != nil {
			t.Fatal(err)
		}
		if box, err := l.Outbox(ctx); err != nil || len(box) != 0 {
			t.Errorf("outbox after Settle: %v, %v", grantIDs(box), err)
		}
		c.Advance(time.Minute)
		g.State, g.Cause = Revoking, Cause{By: "reconciler/a", Why: "policy no longer permits it: i-1: forbidden"}
		if g, err = l.Update(ctx, g); err != nil {
			t.Fatal(err)
		}
		if err := l.Settle(ctx, g.ID, g.NoticeSeq-1, d.Version); err != nil {
			t.Fatal(err)
		}
		box, err := l.Outbox(ctx)
		if err != nil || len(box) != 1 {
			t.Fatalf("outbox after a notice came since: %v, %v", grantIDs(box), err)
		}
		if n := box[0].Notices[len(box[0].Notices)-1]; n.Kind != NoticeRevoked || !n.Urgent || n.Detail != "policy no longer permits it: i-1: forbidden" {
			t.Errorf("the reconciler's revocation: %+v", n)
		}
	})
}

// A ledger that does not announce (a person's direct-mode tools) makes no
// notices, and its writes leave those another writer made where they are.
func TestWritersThatDoNotAnnounceKeepTheOutbox(t *testing.T) {
	c := newClock()
	path := "sqlite://" + filepath.Join(t.TempDir(), "ledger.db")
	ctx := context.Background()
	loud, err := Open(ctx, path, Options{Now: c.Now, Announce: true})
	if err != nil {
		t.Fatal(err)
	}
	defer loud.Close()
	quiet, err := Open(ctx, path, Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer quiet.Close()
	g, err := quiet.Create(ctx, testGrant("g-quiet", c.Now(), time.Hour, Active))
	if err != nil || len(g.Notices) != 0 || g.Outbox {
		t.Fatalf("a quiet create: %+v, %v", g.Notices, err)
	}
	g.State = Revoking
	if g, err = loud.Update(ctx, g); err != nil || len(g.Notices) != 1 {
		t.Fatalf("an announcing update: %+v, %v", g.Notices, err)
	}
	g.State = Revoked
	if _, err = quiet.Update(ctx, g); err != nil {
		t.Fatal(err)
	}
	got, err := loud.Get(ctx, g.ID)
	if err != nil || len(got.Notices) != 1 || !got.Outbox {
		t.Errorf("after a quiet write: notices %+v, outbox %v, %v", got.Notices, got.Outbox, err)
	}
}

// announce names each change people care about once, with who acted and
// why.
func TestAnnounce(t *testing.T) {
	now := newClock().Now()
	base := testGrant("g", now, time.Hour, Active)
	waiting := &Approval{Required: 1, Approvers: []string{"group:admins"}, Deadline: now.Add(30 * time.Minute)}
	with := func(f func(g *Grant)) *Grant {
		g := base
		g.Targets = slices.Clone(base.Targets)
		f(&g)
		return &g
	}
	for _, tc := range []struct {
		name      string
		cur, next *Grant
		want      []NoticeKind
		check     func(t *testing.T, ns []Notice)
	}{
		{name: "break-glass granted at once", next: with(func(g *Grant) { g.State, g.BreakGlass = Provisioning, true }),
			want: []NoticeKind{NoticeBreakGlass}, check: func(t *testing.T, ns []Notice) {
				if !ns[0].Urgent || ns[0].By != "alice@example.com" {
					t.Errorf("break-glass notice %+v: want urgent, by the requester", ns[0])
				}
			}},
		{name: "break-glass active", cur: with(func(g *Grant) { g.State, g.BreakGlass = Provisioning, true }),
			next: with(func(g *Grant) { g.BreakGlass = true }), want: []NoticeKind{NoticeGranted}},
		{name: "denied", cur: with(func(g *Grant) { g.State, g.Approval = Pending, waiting }),
			next: with(func(g *Grant) {
				a := *waiting
				a.Denied = &Vote{By: "erin", Comment: "no ticket"}
				g.State, g.Approval = Denied, &a
			}),
			want: []NoticeKind{NoticeDenied}, check: func(t *testing.T, ns []Notice) {
				if ns[0].By != "erin" || ns[0].Detail != "no ticket" {
					t.Errorf("denial %+v", ns[0])
				}
			}},
		{name: "no decision in time", cur: with(func(g *Grant) { g.State, g.Approval = Pending, waiting }),
			next: with(func(g *Grant) { g.State, g.Approval = Expired, waiting }), want: []NoticeKind{NoticeApprovalExpired}},
		{name: "withdrawn", cur: with(func(g *Grant) { g.State, g.Approval = Pending, waiting }),
			next: with(func(g *Grant) { g.State, g.Approval = Revoked, waiting }), want: []NoticeKind{NoticeEnded}},
		{name: "longer window asked", cur: with(func(g *Grant) {}),
			next: with(func(g *Grant) { g.Extension = &Extension{ExpiresAt: now.Add(4 * time.Hour), Approval: *waiting} }),
			want: []NoticeKind{NoticeApprovalNeeded}, check: func(t *testing.T, ns []Notice) {
				if !ns[0].ExpiresAt.Equal(now.Add(4 * time.Hour)) {
					t.Errorf("the longer window's notice is about the window until %v", ns[0].ExpiresAt)
				}
			}},
		{name: "longer window denied", cur: with(func(g *Grant) { g.Extension = &Extension{ExpiresAt: now.Add(4 * time.Hour), Approval: *waiting} }),
			next: with(func(g *Grant) { g.Cause = Cause{By: "erin", Why: "not that long"} }),
			want: []NoticeKind{NoticeDenied}, check: func(t *testing.T, ns []Notice) {
				if ns[0].By != "erin" || ns[0].Detail != "not that long" {
					t.Errorf("denial %+v", ns[0])
				}
			}},
		{name: "longer window approved", cur: with(func(g *Grant) { g.Extension = &Extension{ExpiresAt: now.Add(4 * time.Hour), Approval: *waiting} }),
			next: with(func(g *Grant) {
				a := *waiting
				a.Given = []Vote{{By: "carol"}}
				g.Extension = &Extension{ExpiresAt: now.Add(4 * time.Hour), Approval: a}
			}), want: []NoticeKind{NoticeApproved}},
		{name: "longer window in force", cur: with(func(g *Grant) { g.Extension = &Extension{ExpiresAt: now.Add(4 * time.Hour), Approval: *waiting} }),
			next: with(func(g *Grant) { g.ExpiresAt = now.Add(4 * time.Hour) }), want: []NoticeKind{NoticeWindowChanged}},
		{name: "ended early", cur: with(func(g *Grant) {}), next: with(func(g *Grant) { g.State, g.Cause = Revoking, Cause{By: "bob"} }),
			want: []NoticeKind{NoticeEnded}, check: func(t *testing.T, ns []Notice) {
				if ns[0].By != "bob" || ns[0].Detail != "ended before its window did" {
					t.Errorf("end %+v", ns[0])
				}
			}},
		{name: "revoke retried", cur: with(func(g *Grant) { g.State = Revoking }), next: with(func(g *Grant) { g.State = Revoked })},
		{name: "could not be provisioned", cur: with(func(g *Grant) { g.State = Provisioning }), next: with(func(g *Grant) { g.State = Failed }),
			want: []NoticeKind{NoticeEnded}},
		{name: "review overdue", cur: with(func(g *Grant) { g.BreakGlass, g.Review = true, &Review{Due: now} }),
			next: with(func(g *Grant) { g.BreakGlass, g.Review = true, &Review{Due: now, Reminded: now} }), want: []NoticeKind{NoticeReviewOverdue}},
		{name: "reviewed", cur: with(func(g *Grant) { g.BreakGlass, g.Review = true, &Review{Due: now} }),
			next: with(func(g *Grant) { g.BreakGlass, g.Review = true, &Review{Due: now, By: "carol", Comment: "INC-9, fine"} }),
			want: []NoticeKind{NoticeReviewed}, check: func(t *testing.T, ns []Notice) {
				if ns[0].By != "carol" || ns[0].Detail != "INC-9, fine" {
					t.Errorf("review %+v", ns[0])
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := announce(tc.cur, tc.next, now)
			if got := kinds(ns); !slices.Equal(got, tc.want) {
				t.Fatalf("notices %v, want %v", got, tc.want)
			}
			if tc.check != nil {
				tc.check(t, ns)
			}
		})
	}
}
