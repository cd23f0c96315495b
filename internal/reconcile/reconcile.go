// Package reconcile ends what Terraform left running: each pass revokes the
// grants whose window has ended, finishes those an interrupted apply or
// destroy left provisioning or revoking, retries hosts that did not answer
// before, and removes Passport users that no open grant accounts for.
//
// Every revocation goes through access.Revoke, the code path terraform
// destroy takes; only the audit events' actor differs. Several reconcilers
// may share one ledger: each takes a lease on a grant before acting on it,
// so a grant is revoked by one of them, and a reconciler that dies mid-pass
// leaves its grants to the next one once its leases run out.
//
// When a host does not answer, the grant stays revoking and its record
// says which targets are left and how many attempts failed there. The
// next pass tries them again, and each further failure doubles the pause
// before the next try, from a minute up to StuckAfter (ledger.Grant.DueAt).
// A revoke that never recorded its end (a destroy still running, or one
// that was killed) is due StuckAfter after its last write, so a destroy
// still running is not raced; once the window has ended, such a grant is
// due as soon as no lease holds it. Revoking a host twice is harmless: a
// clean host counts as revoked.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Defaults for Config fields left zero.
const (
	// DefaultLease outlasts one revoke fan-out (access.DefaultTimeout) with
	// room for the ledger writes around it.
	DefaultLease       = 10 * time.Minute
	DefaultConcurrency = 4
)

// Authorizer re-checks a live grant against the current policy. The
// reconciler calls it, when configured, for every active grant on each
// pass, and revokes those it no longer permits, with an audit event giving
// the reason.
type Authorizer interface {
	// Permits reports whether policy still allows g; when it does not,
	// reason says why, for the audit trail. An error means policy could
	// not be read, and the grant is left alone.
	Permits(ctx context.Context, g ledger.Grant) (ok bool, reason string, err error)
}

// HostLister names the hosts a sweep looks at: the managed Linux and
// Windows nodes Passport may have touched.
type HostLister func(ctx context.Context) ([]string, error)

// Config wires a Reconciler.
type Config struct {
	Ledger *ledger.Ledger
	// Access revokes. Give it the same Ledger.
	Access *access.Service
	// Holder names this reconciler on leases and in the audit trail
	// ("reconciler/<hostname>"): every revoke, sweep and denial it makes
	// names it as the actor. Unique among those sharing the ledger.
	// Required.
	Holder string
	// Lease is how long this reconciler holds a grant while revoking it.
	// Default DefaultLease.
	Lease time.Duration
	// Concurrency is how many grants are revoked at once. Each is one
	// fan-out to its hosts. Default DefaultConcurrency.
	Concurrency int
	// Hosts lists the hosts to sweep for stray users; nil sweeps none.
	Hosts HostLister
	// Authorizer re-checks active grants; nil skips the check (no policy
	// configured).
	Authorizer Authorizer
	// Now is the clock; time.Now when nil. Give the Ledger and Access the
	// same one.
	Now     func() time.Time
	Log     *slog.Logger
	Metrics *Metrics
	// CollectEvery is how often a pass collects session recordings from
	// the hosts it sweeps, when Access has a recordings bucket. Default
	// DefaultCollectEvery; revokes collect at once whatever it says.
	CollectEvery time.Duration
}

// DefaultCollectEvery bounds how long a recording waits on a host for its
// collection when no revoke takes it sooner.
const DefaultCollectEvery = 15 * time.Minute

// Reconciler runs passes. It is safe for concurrent use, but passes of one
// Reconciler do not overlap.
type Reconciler struct {
	cfg  Config
	pass sync.Mutex
	// mu guards lastCollect, the start of the last collection.
	mu          sync.Mutex
	lastCollect time.Time
}

// New checks cfg and returns a Reconciler.
func New(cfg Config) (*Reconciler, error) {
	switch {
	case cfg.Ledger == nil:
		return nil, errors.New("reconcile: Config.Ledger is nil: give the ledger to reconcile")
	case cfg.Access == nil:
		return nil, errors.New("reconcile: Config.Access is nil: give an access.Service with the same ledger")
	case cfg.Holder == "":
		return nil, errors.New("reconcile: Config.Holder is empty: name this reconciler, uniquely among those sharing the ledger")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CollectEvery <= 0 {
		cfg.CollectEvery = DefaultCollectEvery
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{cfg: cfg}, nil
}

// Report is what one pass did.
type Report struct {
	Due     int // grants the ledger listed as due
	Revoked int // grants this pass closed
	Pending int // grants left revoking: a host did not answer
	Skipped int // grants another reconciler held, or that changed since listed
	Failed  int // grants this pass could not act on (ledger errors)
	Denied  int // active grants revoked because policy no longer permits them
	Strays  int // stray users removed
	// Reminded counts break-glass grants announced as overdue for review.
	Reminded int
	// Warned counts grants announced as expiring soon.
	Warned int
	// Recordings counts session recordings collected into the bucket;
	// RecordingsExpired those deleted at the end of their retention.
	Recordings, RecordingsExpired int
}

// Pass runs one reconcile pass. The error joins what went wrong; the pass
// goes on past a failing grant or host, so one bad host never holds up the
// rest.
func (r *Reconciler) Pass(ctx context.Context) (Report, error) {
	r.pass.Lock()
	defer r.pass.Unlock()
	start := time.Now()
	var rep Report
	// Reminders first: they move a reminded grant's due time on, so the
	// list below does not offer it again.
	remindErr := r.remind(ctx, &rep)
	due, err := r.due(ctx, r.cfg.Now(), isDue)
	if err != nil {
		r.cfg.Metrics.failure("list")
		return rep, err
	}
	rep.Due = len(due)
	ids := make(map[string]string, len(due))
	for _, g := range due {
		ids[g.ID] = ""
	}
	errs := append(r.revokeAll(ctx, ids, &rep), remindErr)
	if r.cfg.Authorizer != nil {
		errs = append(errs, r.recheck(ctx, &rep))
	}
	if r.cfg.Hosts != nil {
		errs = append(errs, r.sweep(ctx, &rep))
	}
	if r.cfg.Metrics != nil {
		now := r.cfg.Now()
		// A grant waiting for its retry is still overdue.
		left, err := r.due(ctx, now, isOverdue)
		if err != nil {
			errs = append(errs, err)
		}
		r.cfg.Metrics.observe(ctx, r.cfg.Ledger, now, time.Since(start), left)
	}
	err = errors.Join(errs...)
	level := slog.LevelInfo
	if err != nil {
		level = slog.LevelWarn
	}
	r.cfg.Log.Log(ctx, level, "reconcile pass", "due", rep.Due, "revoked", rep.Revoked, "pending", rep.Pending,
		"skipped", rep.Skipped, "failed", rep.Failed, "denied", rep.Denied, "strays", rep.Strays, "reminded", rep.Reminded, "warned", rep.Warned,
		"duration_ms", time.Since(start).Milliseconds(), "error", errString(err))
	// The pass ran to its end: a host that does not answer is a failure
	// to count, not a reason to call the reconciler unhealthy (a restart
	// would not bring the host back).
	r.cfg.Metrics.completed(r.cfg.Now())
	return rep, err
}

// Run passes every interval until ctx ends. A failing pass is logged and
// the next one tries again.
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		// Errors are in the log and the metrics; the daemon keeps going.
		_, _ = r.Pass(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// due lists the grants to act on at now: those the ledger says are due,
// and revoking grants whose window has ended. The ledger makes a revoke
// without a recorded end due only StuckAfter after its last write, which
// is right for a destroy in progress; but once the window is over, a
// revoke left by a reconciler that died must be finished as soon as its
// lease runs out. A revoke that ended with failures keeps its pause.
func (r *Reconciler) due(ctx context.Context, now time.Time, keep func(ledger.Grant, time.Time) bool) ([]ledger.Grant, error) {
	due, err := r.cfg.Ledger.ListDue(ctx, now)
	if err != nil {
		return nil, fmt.Errorf("reading due grants from the ledger: %w", err)
	}
	revoking, err := r.cfg.Ledger.List(ctx, ledger.Revoking)
	if err != nil {
		return nil, fmt.Errorf("reading revoking grants from the ledger: %w", err)
	}
	var out []ledger.Grant
	seen := make(map[string]bool)
	for _, g := range append(due, revoking...) {
		if !seen[g.ID] && keep(g, now) {
			seen[g.ID] = true
			out = append(out, g)
		}
	}
	return out, nil
}

// dueSince is when g became due (see due).
func dueSince(g ledger.Grant) time.Time {
	if g.State == ledger.Pending || !g.DueAt.IsZero() && g.DueAt.Before(g.ExpiresAt) {
		return g.DueAt
	}
	return g.ExpiresAt
}

// isDue reports whether g needs a reconciler at now (see due).
func isDue(g ledger.Grant, now time.Time) bool {
	return isOverdue(g, now) && (g.RevokeFailures() == 0 || !g.DueAt.After(now))
}

// isOverdue reports whether g should have been acted on by now, whether or
// not its next retry is due yet.
func isOverdue(g ledger.Grant, now time.Time) bool {
	if g.State.Closed() {
		return false
	}
	switch {
	case g.State == ledger.Pending:
		// A pending request's window has not started: only its approval
		// deadline makes it due.
		return !g.DueAt.IsZero() && !g.DueAt.After(now)
	case g.State == ledger.Active && now.Before(g.ExpiresAt):
		// Within its window an active grant is the reconciler's only for
		// what waits on it; a review reminder is remind's.
		return waits(g, now)
	}
	return !g.DueAt.IsZero() && !g.DueAt.After(now) || !now.Before(g.ExpiresAt)
}

// dueReason says, for the log and the metrics, why a due grant is revoked.
func (r *Reconciler) dueReason(g ledger.Grant) string {
	switch {
	case waits(g, r.cfg.Now()):
		return "approval-expired"
	case !r.cfg.Now().Before(g.ExpiresAt):
		return "expired"
	case g.State == ledger.Provisioning:
		return "stuck-provisioning"
	case g.RevokeFailures() > 0:
		return "retry"
	case g.State == ledger.Revoking:
		return "stuck-revoking"
	}
	return "due"
}

// revokeAll revokes grants, Concurrency at a time. grants maps each id to
// the policy's reason for a denial, or "" for a grant that is due.
func (r *Reconciler) revokeAll(ctx context.Context, grants map[string]string, rep *Report) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, r.cfg.Concurrency)
	)
	for id, denial := range grants {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outcome, err := r.revoke(ctx, id, denial)
			mu.Lock()
			defer mu.Unlock()
			switch outcome {
			case revoked:
				rep.Revoked++
				if denial != "" {
					rep.Denied++
				}
			case pending:
				rep.Pending++
			case skipped:
				rep.Skipped++
			case failed:
				rep.Failed++
			}
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return errs
}

type outcome int

const (
	revoked outcome = iota
	pending
	skipped
	failed
)

// revoke takes the lease on one grant, revokes it if it still needs it,
// and gives the lease back. denial is empty for a grant that is due, or the
// policy's reason for revoking an active one.
func (r *Reconciler) revoke(ctx context.Context, id, denial string) (outcome, error) {
	g, err := r.cfg.Ledger.Acquire(ctx, id, r.cfg.Holder, r.cfg.Lease)
	if errors.Is(err, ledger.ErrLeaseHeld) {
		return skipped, nil
	}
	if err != nil {
		r.cfg.Metrics.failure("lease")
		return failed, fmt.Errorf("taking the lease on grant %s: %w", id, err)
	}
	defer func() {
		// A lease that cannot be given back runs out by itself.
		if _, err := r.cfg.Ledger.Release(context.WithoutCancel(ctx), id, r.cfg.Holder); err != nil {
			r.cfg.Log.Warn("releasing lease", "grant", id, "error", err.Error())
		}
	}()
	// The list was read before the lease was taken: another reconciler
	// may have closed the grant since, or someone extended it.
	if g.State.Closed() || (denial == "" && !isDue(g, r.cfg.Now())) {
		return skipped, nil
	}
	why := r.dueReason(g)
	if denial == "" && why == "approval-expired" {
		// Nothing of it is on a host: the request (or its longer window)
		// ends unapproved, and only the ledger changes.
		ended, err := r.cfg.Access.EndWaiting(ctx, r.cfg.Holder, g.ID, true)
		switch {
		case err != nil:
			r.cfg.Metrics.failure("ledger")
			return failed, fmt.Errorf("ending grant %s, whose approval deadline passed: %w", id, err)
		case !ended:
			return skipped, nil
		}
		r.cfg.Log.Info("approval deadline passed", "grant", g.ID, "state", string(g.State))
		r.cfg.Metrics.revoked(why)
		return revoked, nil
	}
	if denial != "" {
		why = "policy"
		if _, err := r.cfg.Ledger.Append(ctx, ledger.Event{Actor: r.cfg.Holder, Action: ledger.ActionDenied, GrantID: g.ID, Subject: g.Requester,
			Detail: "policy no longer permits this grant: " + denial}); err != nil {
			// Access stays until the reason is on record.
			r.cfg.Metrics.failure("ledger")
			return failed, fmt.Errorf("recording the policy denial of grant %s: %w", id, err)
		}
	}
	log := r.cfg.Log.With("grant", g.ID, "user", g.Username, "state", string(g.State), "reason", why)
	ag := access.FromRecord(g)
	ag.Why = denial
	err = r.cfg.Access.Revoke(ctx, r.cfg.Holder, ag)
	after, getErr := r.cfg.Ledger.Get(ctx, id)
	switch {
	case getErr == nil && after.State.Closed():
		log.Info("revoked", "closed_as", string(after.State))
		r.cfg.Metrics.revoked(why)
		return revoked, err
	case err != nil:
		log.Warn("revoke incomplete; retried on a later pass", "error", err.Error())
		r.cfg.Metrics.failure("revoke")
		return pending, fmt.Errorf("grant %s (%s): %w", id, why, err)
	default:
		r.cfg.Metrics.failure("ledger")
		return failed, errors.Join(fmt.Errorf("grant %s (%s) was revoked on its hosts but its record was not closed", id, why), getErr)
	}
}

// waits reports whether g is due because what it waits for had no
// decision in time: a pending request, or an active one's longer window
// whose deadline passed before its window ended.
func waits(g ledger.Grant, now time.Time) bool {
	switch {
	case g.State == ledger.Pending:
		return true
	case g.State == ledger.Active && g.Extension != nil:
		return !now.Before(g.Extension.Approval.Deadline) && now.Before(g.ExpiresAt)
	}
	return false
}

// remind announces each break-glass grant whose review is overdue, once
// per ledger.ReviewReminderEvery, open or closed, and each window that
// ends soon (warn).
func (r *Reconciler) remind(ctx context.Context, rep *Report) error {
	now := r.cfg.Now()
	// A grant written by a ledger that does not announce (the provider or
	// the CLI in direct mode) is due only when its window ends, not its
	// expiry notice before: look that far ahead so its window is announced
	// too. warn and the reminders below each check their own time.
	due, err := r.cfg.Ledger.ListDue(ctx, now.Add(r.cfg.Ledger.ExpiryNotice()))
	if err != nil {
		r.cfg.Metrics.failure("list")
		return fmt.Errorf("reading due grants from the ledger: %w", err)
	}
	var errs []error
	for _, g := range due {
		if err := r.warn(ctx, g, now, rep); err != nil {
			errs = append(errs, err)
		}
		next := g.Review.NextReminder()
		if !g.BreakGlass || next.IsZero() || next.After(now) {
			continue
		}
		sent, err := r.cfg.Access.RemindReview(ctx, r.cfg.Holder, g.ID)
		if err != nil {
			r.cfg.Metrics.failure("ledger")
			errs = append(errs, fmt.Errorf("announcing the overdue review of grant %s: %w", g.ID, err))
			continue
		}
		if sent {
			rep.Reminded++
			r.cfg.Log.Warn("break-glass review overdue", "grant", g.ID, "requester", g.Requester, "due", g.Review.Due.UTC().Format(time.RFC3339))
		}
	}
	return errors.Join(errs...)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
