package ledger

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// A pending grant keeps what it waits for on every backend: the approvals
// asked and given, its deadline (when it is due for a reconciler to end
// it unapproved), and the requester's password key. A denial closes it
// for good.
func TestPendingGrants(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		in := testGrant("g-wait", c.Now(), 3*time.Hour, Pending)
		in.Username, in.Certificate, in.Serial = "", "", 0
		deadline := c.Now().Add(30 * time.Minute)
		in.Approval = &Approval{Required: 2, Approvers: []string{"group:admins"}, Why: "i-0123456789abcdef0: needs 2 approvals", Deadline: deadline}
		in.SealTo = "MIIBIjANBgkq"
		created, err := l.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if !created.DueAt.Equal(deadline) {
			t.Errorf("a pending grant is due %v, want its deadline %v", created.DueAt, deadline)
		}
		c.Advance(time.Minute)
		created.Approval.Given = append(created.Approval.Given, Vote{By: "carol", Kind: "person", At: c.Now(), Comment: "ok, INC-1 is real"})
		once, err := l.Update(ctx, created)
		if err != nil {
			t.Fatal(err)
		}
		got, err := l.Get(ctx, "g-wait")
		if err != nil || !reflect.DeepEqual(got, once) {
			t.Fatalf("read back\n%+v\nwant\n%+v (%v)", got, once, err)
		}
		if got.Approval.Done() || len(got.Approval.Given) != 1 || got.SealTo != "MIIBIjANBgkq" {
			t.Errorf("after one of two approvals: %+v", got.Approval)
		}
		due, err := l.ListDue(ctx, deadline)
		if err != nil || len(due) != 1 || due[0].ID != "g-wait" {
			t.Errorf("due at the deadline: %v, %v", grantIDs(due), err)
		}

		got.State = Denied
		got.Approval.Denied = &Vote{By: "erin", Kind: "person", At: c.Now(), Comment: "no change ticket"}
		for i := range got.Targets {
			got.Targets[i].State = Denied
		}
		denied, err := l.Update(ctx, got)
		if err != nil {
			t.Fatal(err)
		}
		if !denied.DueAt.IsZero() || !denied.State.Closed() {
			t.Errorf("a denied grant: due %v, closed %v", denied.DueAt, denied.State.Closed())
		}
		denied.State = Pending
		if _, err := l.Update(ctx, denied); !errors.Is(err, ErrClosed) {
			t.Errorf("reopening a denied grant: %v, want ErrClosed", err)
		}
		if list, err := l.List(ctx, Denied); err != nil || len(list) != 1 || list[0].Approval.Denied.By != "erin" {
			t.Errorf("List(denied): %v, %v", grantIDs(list), err)
		}
	})
}

// An active grant whose longer window waits for approval is due at that
// approval's deadline, if it comes before the window's end.
func TestExtensionDeadlineIsDue(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		g := testGrant("g-ext", c.Now(), time.Hour, Active)
		g.Extension = &Extension{ExpiresAt: c.Now().Add(4 * time.Hour), Approval: Approval{Required: 1, Deadline: c.Now().Add(30 * time.Minute)}}
		created, err := l.Create(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if !created.DueAt.Equal(c.Now().Add(30*time.Minute)) || !created.Extension.ExpiresAt.Equal(c.Now().Add(4*time.Hour)) {
			t.Errorf("due %v, extension %+v", created.DueAt, created.Extension)
		}
		created.Extension = nil
		after, err := l.Update(ctx, created)
		if err != nil || !after.DueAt.Equal(g.ExpiresAt) || after.Extension != nil {
			t.Errorf("with the extension dropped: due %v, extension %+v, %v", after.DueAt, after.Extension, err)
		}
	})
}

func TestPendingGrantNeedsAnApproval(t *testing.T) {
	l := backendCases()[0].open(t, Options{})
	if _, err := l.Create(context.Background(), testGrant("g-x", time.Now(), time.Hour, Pending)); err == nil {
		t.Error("a pending grant without an approval to wait for was stored")
	}
}

// A break-glass grant owes a review: while it has none, it is due for a
// reminder at the review's deadline and every day after, closed or not,
// and Unreviewed lists it; reviewed, it is neither.
func TestUnreviewedBreakGlass(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		g := testGrant("g-glass", c.Now(), time.Hour, Active)
		g.BreakGlass, g.Review = true, &Review{Due: c.Now().Add(30 * time.Minute)}
		created, err := l.Create(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if !created.DueAt.Equal(g.Review.Due) {
			t.Errorf("an active break-glass grant is due %v, want its review's deadline %v", created.DueAt, g.Review.Due)
		}
		if _, err := l.Create(ctx, testGrant("g-plain", c.Now(), time.Hour, Revoked)); err != nil {
			t.Fatal(err)
		}
		created.State = Revoked
		for i := range created.Targets {
			created.Targets[i].State = Revoked
		}
		created.Review.Reminded = created.Review.Due
		closed, err := l.Update(ctx, created)
		if err != nil {
			t.Fatal(err)
		}
		if want := created.Review.Due.Add(ReviewReminderEvery); !closed.DueAt.Equal(want) {
			t.Errorf("a closed unreviewed grant, reminded once, is due %v, want a day later %v", closed.DueAt, want)
		}
		un, err := l.Unreviewed(ctx)
		if err != nil || len(un) != 1 || un[0].ID != "g-glass" {
			t.Fatalf("Unreviewed: %v, %v", grantIDs(un), err)
		}
		closed.Review.By, closed.Review.At, closed.Review.Comment = "erin", c.Now(), "the outage was real"
		reviewed, err := l.Update(ctx, closed)
		if err != nil || !reviewed.DueAt.IsZero() || !reviewed.Review.Done() {
			t.Fatalf("reviewed: due %v, %+v, %v", reviewed.DueAt, reviewed.Review, err)
		}
		if un, err := l.Unreviewed(ctx); err != nil || len(un) != 0 {
			t.Errorf("Unreviewed after the review: %v, %v", grantIDs(un), err)
		}
	})
}
