// Package ledger keeps Passport's record of grants and its audit trail.
//
// A grant is written before any host is touched (state provisioning) and
// follows its targets through active, revoking and revoked, expired or
// failed, so that an apply killed at any point leaves a record saying what
// may be on which host. Every write is a compare-and-swap on the grant's
// version, and a reconciler takes a lease on a grant before revoking it, so
// several writers never lose or double an update.
//
// The audit trail is append-only and hash-chained: every event carries the
// hash of the one before it, and Verify names the first event that was
// changed, removed or moved.
//
// Two backends sit behind the one Ledger type: sqlite (a file on one
// machine, the default) and DynamoDB (shared by several machines). Open
// picks one from a URL.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Options tunes a Ledger. The zero value is usable.
type Options struct {
	// Now is the clock for leases and write times; time.Now when nil.
	Now func() time.Time
	// StuckAfter is how long a grant may stay provisioning or revoking
	// without a write before it is due for a reconciler: longer than the
	// slowest apply. Default 15 minutes.
	StuckAfter time.Duration
	// DynamoDB configures the dynamodb:// backend.
	DynamoDB DynamoDBOptions
	// Announce makes every write record, in the same write, the notices
	// people should hear about (notice.go); the Passport service turns it
	// on when it has somewhere to send them.
	Announce bool
	// ExpiryNotice is how long before its window ends an active grant is
	// due for its expiring-soon notice, when announcing;
	// DefaultExpiryNotice when zero.
	ExpiryNotice time.Duration
}

const defaultStuckAfter = 15 * time.Minute

// Ledger is the record of grants and the audit trail, on one backend. It is
// safe for concurrent use, also by several processes (sqlite on one
// machine) or several machines (DynamoDB).
type Ledger struct {
	b            backend
	now          func() time.Time
	stuckAfter   time.Duration
	announce     bool
	expiryNotice time.Duration
	announced    chan struct{}
}

// backend is one storage engine. Ledger validates, stamps times and
// versions, and builds the audit chain; a backend stores, and makes each
// conditional write atomic.
type backend interface {
	createGrant(ctx context.Context, g *Grant) error
	grant(ctx context.Context, id string) (Grant, error)
	// putGrant replaces the grant if its stored version is prev, keeping
	// the stored created_at, which it sets in g. With notices it also
	// writes g's notices and puts the grant in the outbox; without, it
	// leaves both as they are.
	putGrant(ctx context.Context, g *Grant, prev int64, notices bool) error
	// outboxGrants returns the grants in the outbox, oldest first.
	outboxGrants(ctx context.Context) ([]Grant, error)
	// putDelivery writes d as the grant's delivery record if the stored
	// one is at version prev (0: none yet), or fails with a
	// *ConflictError.
	putDelivery(ctx context.Context, id string, d Delivery, prev int64) error
	// settle takes the grant out of the outbox if its NoticeSeq is through
	// and its delivery record at version; otherwise it does nothing.
	settle(ctx context.Context, id string, through, version int64) error
	grantsInState(ctx context.Context, s State) ([]Grant, error)
	// dueGrants returns the grants whose DueAt is at or before now.
	dueGrants(ctx context.Context, now time.Time) ([]Grant, error)
	// setLease writes l and adds 1 to the version, if holder may: to
	// acquire (l.Holder == holder) the stored lease must be free at now,
	// run out, or holder's already; to release (l zero) it must be
	// holder's.
	setLease(ctx context.Context, id string, l Lease, holder string, now time.Time) (Grant, error)
	// appendEvent seals e as the event after the current last one and
	// stores it, atomically with respect to other appenders.
	appendEvent(ctx context.Context, e Event) (Event, error)
	// putEntry stores e unless a live entry (Expires after now) has its
	// kind and key: then ErrExists.
	putEntry(ctx context.Context, e Entry, now time.Time) error
	// entry returns the stored entry, expired or not, or a missing-entry
	// error matching ErrNotFound.
	entry(ctx context.Context, kind, key string) (Entry, error)
	// takeEntry deletes the stored entry and returns it, atomically.
	takeEntry(ctx context.Context, kind, key string) (Entry, error)
	// lastEvent returns the end of the trail, or the zero Event.
	lastEvent(ctx context.Context) (Event, error)
	// events calls fn for every event in seq order that f may match (the
	// backend may pre-filter; Ledger applies f again).
	events(ctx context.Context, f Filter, fn func(Event) error) error
	// putRecording stores r, replacing the same session's index.
	putRecording(ctx context.Context, r Recording) error
	// recording returns one index, expired or not, or a missing-recording
	// error matching ErrNotFound.
	recording(ctx context.Context, request, instance, session string) (Recording, error)
	// recordings returns the indexes f may match, expired or not (the
	// backend may pre-filter; Ledger applies f again).
	recordings(ctx context.Context, f RecordingFilter) ([]Recording, error)
	deleteRecording(ctx context.Context, request, instance, session string) error
	close() error
}

func newLedger(b backend, o Options) *Ledger {
	l := &Ledger{b: b, now: o.Now, stuckAfter: o.StuckAfter, announce: o.Announce, expiryNotice: o.ExpiryNotice, announced: make(chan struct{}, 1)}
	if l.expiryNotice <= 0 {
		l.expiryNotice = DefaultExpiryNotice
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.stuckAfter <= 0 {
		l.stuckAfter = defaultStuckAfter
	}
	return l
}

// Close releases the backend.
func (l *Ledger) Close() error { return l.b.close() }

// Create stores a new grant at version 1. It fails with ErrExists when the
// id is taken. The grant's Version, CreatedAt, UpdatedAt and DueAt are set
// by the ledger; its lease is ignored.
func (l *Ledger) Create(ctx context.Context, g Grant) (Grant, error) {
	if err := g.validate(); err != nil {
		return Grant{}, err
	}
	now := l.now()
	g.Version, g.Lease = 1, Lease{}
	g.CreatedAt, g.UpdatedAt = now, now
	g.Notices, g.NoticeSeq, g.Delivery, g.Outbox = nil, 0, Delivery{}, false
	if l.announce {
		stamp(&g, nil, 0, announce(nil, &g, now), now)
		g.Outbox = len(g.Notices) > 0
	}
	g.DueAt = l.dueAt(&g)
	g.normalize()
	g.Cause = Cause{}
	if err := l.b.createGrant(ctx, &g); err != nil {
		return Grant{}, err
	}
	if g.Outbox {
		l.signal()
	}
	return g, nil
}

// Get returns the grant with that id, or an error matching ErrNotFound.
func (l *Ledger) Get(ctx context.Context, id string) (Grant, error) {
	return l.b.grant(ctx, id)
}

// Update writes g if the stored grant is still at g.Version, and returns
// it at the next version. If someone wrote in between (another writer, or a
// reconciler taking the lease) it returns a *ConflictError and writes
// nothing. A closed grant may be updated (its targets' details, say) but
// not reopened: that fails with ErrClosed. CreatedAt stays what Create
// wrote, whatever g holds.
func (l *Ledger) Update(ctx context.Context, g Grant) (Grant, error) {
	if err := g.validate(); err != nil {
		return Grant{}, err
	}
	prev := g.Version
	now := l.now()
	added := false
	if l.announce {
		// The notices are what changed from the stored version; the
		// write below succeeds only over that version, so they are
		// exactly this write's.
		cur, err := l.b.grant(ctx, g.ID)
		if err != nil {
			return Grant{}, err
		}
		if cur.Version != prev {
			return Grant{}, updateRefused(cur, prev)
		}
		news := announce(&cur, &g, now)
		stamp(&g, cur.Notices, cur.NoticeSeq, news, now)
		g.Delivery, g.Outbox = cur.Delivery, cur.Outbox || len(news) > 0
		added = len(news) > 0
	}
	g.Cause = Cause{}
	g.Version++
	g.UpdatedAt = now
	g.DueAt = l.dueAt(&g)
	g.normalize()
	if err := l.b.putGrant(ctx, &g, prev, added); err != nil {
		return Grant{}, err
	}
	if added {
		l.signal()
	}
	return g, nil
}

// List returns every grant in state s.
func (l *Ledger) List(ctx context.Context, s State) ([]Grant, error) {
	if !s.valid() {
		return nil, fmt.Errorf("ledger: unknown grant state %q (want one of %s)", s, stateList())
	}
	return l.b.grantsInState(ctx, s)
}

// ListDue returns the grants a reconciler should act on at now: active or
// provisioning grants whose window has ended, and grants stuck in
// provisioning or revoking for StuckAfter. It reads an index of open grants
// only, so its cost follows the number due, not the number stored.
// Leased grants are included; Acquire tells whether one is free, and
// returns the grant as stored then, which the caller should check is still
// open: another reconciler may have closed it since the list was read.
func (l *Ledger) ListDue(ctx context.Context, now time.Time) ([]Grant, error) {
	return l.b.dueGrants(ctx, now)
}

// Acquire leases the grant to holder for d and returns it at its new
// version. It succeeds when the lease is free, has run out, or is already
// holder's (which extends it); otherwise it returns a *LeaseHeldError.
//
// The lease's end is written from this ledger's clock and compared with
// the next acquirer's, so the clocks of reconcilers sharing a table must
// agree to well within d (NTP does). Pick d longer than one revocation
// takes, and write the grant before it runs out: the version bump of a
// later Acquire makes a late writer's Update fail with ErrConflict.
func (l *Ledger) Acquire(ctx context.Context, id, holder string, d time.Duration) (Grant, error) {
	if holder == "" || d <= 0 {
		return Grant{}, fmt.Errorf("ledger: lease on %s needs a holder and a positive duration", id)
	}
	now := l.now()
	return l.b.setLease(ctx, id, Lease{Holder: holder, Until: now.Add(d)}, holder, now)
}

// Release gives up holder's lease on the grant and returns it at its new
// version. It returns a *LeaseHeldError when holder does not hold it
// (anymore).
func (l *Ledger) Release(ctx context.Context, id, holder string) (Grant, error) {
	if holder == "" {
		return Grant{}, fmt.Errorf("ledger: releasing the lease on %s needs the holder", id)
	}
	return l.b.setLease(ctx, id, Lease{}, holder, l.now())
}

// dueAt decides when a reconciler must next look at g: the state's own
// deadline, or sooner a deadline of what waits on an active grant or a
// reminder that its review is overdue. A closed grant is due only for such
// a reminder.
func (l *Ledger) dueAt(g *Grant) time.Time {
	if g.State.Closed() || g.State == Active {
		return earliest(l.stateDue(g), g.Review.NextReminder())
	}
	return l.stateDue(g)
}

// earliest is the earlier of two times, zero standing for none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

func (l *Ledger) stateDue(g *Grant) time.Time {
	stuck := g.UpdatedAt.Add(l.stuckAfter)
	switch g.State {
	case Pending:
		return g.Approval.Deadline
	case Active:
		end := g.ExpiresAt
		if l.announce && !g.warned() {
			// Due for its expiring-soon notice first.
			end = g.ExpiresAt.Add(-l.expiryNotice)
		}
		if g.Extension != nil && g.Extension.Approval.Deadline.Before(end) {
			return g.Extension.Approval.Deadline
		}
		return end
	case Provisioning:
		if g.ExpiresAt.Before(stuck) {
			return g.ExpiresAt
		}
		return stuck
	case Revoking:
		if n := g.RevokeFailures(); n > 0 {
			if retry := g.UpdatedAt.Add(retryDelay(n)); retry.Before(stuck) {
				return retry
			}
		}
		return stuck
	}
	return time.Time{}
}

// Touch records that a writer is still working on open grant id: its
// last write moves to now, so that it does not look stuck to reconcilers
// while a long provision or revoke goes on. A closed or missing grant, or
// one someone else wrote in between (which moved it just the same), is
// left as it is.
func (l *Ledger) Touch(ctx context.Context, id string) error {
	g, err := l.Get(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case g.State.Closed():
		return nil
	}
	_, err = l.Update(ctx, g)
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// Unreviewed lists the break-glass grants whose review has not been
// recorded, open or closed. An unreviewed grant stays due for its
// reminders, so the list reads the open grants and the due index, never
// the whole history.
func (l *Ledger) Unreviewed(ctx context.Context) ([]Grant, error) {
	var out []Grant
	seen := map[string]bool{}
	keep := func(gs []Grant) {
		for _, g := range gs {
			if g.BreakGlass && !g.Review.Done() && !seen[g.ID] {
				seen[g.ID] = true
				out = append(out, g)
			}
		}
	}
	for _, st := range OpenStates() {
		gs, err := l.List(ctx, st)
		if err != nil {
			return nil, err
		}
		keep(gs)
	}
	gs, err := l.ListDue(ctx, time.Unix(0, math.MaxInt64))
	if err != nil {
		return nil, err
	}
	keep(gs)
	return out, nil
}
