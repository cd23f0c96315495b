package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Deliverer sends the ledger's outbox to the configured sinks. Several
// replicas may run one each on a shared ledger: a replica takes a
// request's notices for Lease with a conditional write on the request's
// delivery record before sending any, so two replicas never send the same
// notice at once, and a replica that dies leaves them to the others when
// its lease runs out.
type Deliverer struct {
	ledger  *ledger.Ledger
	sinks   []*sink
	holder  string
	cfg     *Config
	now     func() time.Time
	log     *slog.Logger
	metrics *metrics
}

// Options wires a Deliverer.
type Options struct {
	// Holder names this replica on delivery leases; unique among those
	// sharing the ledger.
	Holder string
	// Registry, when set, gets the delivery metrics.
	Registry prometheus.Registerer
	Now      func() time.Time
	Log      *slog.Logger
}

// New returns a Deliverer of l's outbox to cfg's sinks. l must announce
// (ledger.Options.Announce).
func New(l *ledger.Ledger, cfg *Config, o Options) (*Deliverer, error) {
	if o.Holder == "" {
		return nil, errors.New("notify: Options.Holder is empty: name this replica")
	}
	if l.ExpiryNotice() == 0 {
		return nil, errors.New("notify: the ledger does not announce: open it with ledger.Options.Announce")
	}
	d := &Deliverer{ledger: l, holder: o.Holder, cfg: cfg, now: o.Now, log: o.Log, metrics: newMetrics(o.Registry)}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	for _, sc := range cfg.Sinks {
		d.sinks = append(d.sinks, newSink(sc, cfg.Timeout.or(DefaultTimeout)))
		d.metrics.init(sc.Name)
	}
	return d, nil
}

// Run delivers until ctx ends: at once when this process's ledger
// announced something, else every Poll (another replica's notices,
// retries that came due).
func (d *Deliverer) Run(ctx context.Context) error {
	t := time.NewTicker(d.cfg.Poll.or(DefaultPoll))
	defer t.Stop()
	for {
		if err := d.Pass(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("notification pass", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.ledger.Announcements():
		case <-t.C:
		}
	}
}

// Pass sends what is due in the outbox now, and updates the backlog
// metrics.
func (d *Deliverer) Pass(ctx context.Context) error {
	box, err := d.ledger.Outbox(ctx)
	if err != nil {
		return fmt.Errorf("reading the notification outbox: %w", err)
	}
	var errs []error
	for _, g := range box {
		if err := d.deliver(ctx, g.ID); err != nil {
			errs = append(errs, err)
		}
	}
	// The backlog as it stands after this pass.
	if box, err = d.ledger.Outbox(ctx); err == nil {
		d.metrics.backlog(d.sinks, box, d.now())
	}
	return errors.Join(errs...)
}

// unsent lists g's notices after p's progress, in order.
func unsent(g ledger.Grant, p *ledger.Progress) []ledger.Notice {
	var out []ledger.Notice
	for _, n := range g.Notices {
		if n.Seq > p.Through {
			out = append(out, n)
		}
	}
	return out
}

func progressOf(d ledger.Delivery, name string) *ledger.Progress {
	if p, ok := d.Sinks[name]; ok && p != nil {
		return p
	}
	return &ledger.Progress{}
}

// deliver sends grant id's unsent notices to each sink that is not
// waiting for a retry, in order, recording each outcome.
func (d *Deliverer) deliver(ctx context.Context, id string) error {
	g, err := d.ledger.Get(ctx, id)
	if err != nil {
		return err
	}
	now := d.now()
	if !g.Outbox || g.Delivery.Held(d.holder, now) {
		return nil
	}
	ready := false
	for _, s := range d.sinks {
		p := progressOf(g.Delivery, s.cfg.Name)
		if p.Through < g.NoticeSeq && !now.Before(p.RetryAt) {
			ready = true
		}
	}
	if !ready && !d.settled(g) {
		return nil // every sink waits for its retry
	}
	// Take the request's notices: a conditional write over the version
	// read, so only one replica sends them.
	dl := g.Delivery
	dl.Holder, dl.Until = d.holder, now.Add(d.cfg.Lease.or(DefaultLease))
	if dl.Sinks == nil {
		dl.Sinks = map[string]*ledger.Progress{}
	}
	if dl, err = d.ledger.SetDelivery(ctx, id, dl); err != nil {
		if errors.Is(err, ledger.ErrConflict) {
			return nil // another replica took them
		}
		return err
	}
	var errs []error
	for _, s := range d.sinks {
		if err := d.toSink(ctx, g, s, &dl); err != nil {
			errs = append(errs, err)
			break // the lease is lost or the ledger fails: stop here
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	dl.Holder, dl.Until = "", time.Time{}
	if dl, err = d.ledger.SetDelivery(ctx, id, dl); err != nil {
		return err
	}
	g.Delivery = dl
	if d.settled(g) {
		return d.ledger.Settle(ctx, id, g.NoticeSeq, dl.Version)
	}
	return nil
}

// settled reports whether every sink has had every notice of g.
func (d *Deliverer) settled(g ledger.Grant) bool {
	for _, s := range d.sinks {
		if progressOf(g.Delivery, s.cfg.Name).Through < g.NoticeSeq {
			return false
		}
	}
	return true
}

// toSink sends g's unsent notices to s in order, recording each outcome
// in dl. A failure leaves the rest for the retry, so a request's events
// reach s in the order they happened; a notice that has failed for
// DeadLetterAfter is given up on, and the next one is sent.
func (d *Deliverer) toSink(ctx context.Context, g ledger.Grant, s *sink, dl *ledger.Delivery) error {
	name := s.cfg.Name
	p := progressOf(*dl, name)
	dl.Sinks[name] = p
	if d.now().Before(p.RetryAt) {
		return nil
	}
	record := func() error {
		dl.Until = d.now().Add(d.cfg.Lease.or(DefaultLease))
		next, err := d.ledger.SetDelivery(ctx, g.ID, *dl)
		if err != nil {
			return fmt.Errorf("recording the delivery of request %s's notices to %s: %w", g.ID, name, err)
		}
		*dl = next
		dl.Sinks[name] = p
		return nil
	}
	if len(g.Notices) > 0 && g.Notices[0].Seq > p.Through+1 {
		// Older notices left the record before this sink had them (it
		// was added or renamed since): they are past any retry.
		p.Through = g.Notices[0].Seq - 1
	}
	for _, n := range unsent(g, p) {
		if !s.wants(string(n.Kind)) {
			p.Through = n.Seq
			continue
		}
		e := NewEvent(g, n)
		now := d.now()
		err := s.send(ctx, e, now)
		log := d.log.With("sink", name, "event", e.ID, "type", e.Type)
		switch {
		case err == nil:
			p.Through, p.Attempts, p.FailingSince, p.RetryAt = n.Seq, 0, time.Time{}, time.Time{}
			d.metrics.delivered.WithLabelValues(name).Inc()
			log.Debug("notification delivered")
		case !p.FailingSince.IsZero() && now.Sub(p.FailingSince) >= d.cfg.DeadLetterAfter.or(DefaultDeadLetterAfter):
			// The audit trail hears of it first: if that write fails, the
			// notice stays where it was and is tried, and given up on,
			// again at the next pass, so the event is never lost.
			if _, aerr := d.ledger.Append(ctx, ledger.Event{Actor: d.holder, Action: ledger.ActionNotificationDeadLettered, GrantID: g.ID, Subject: g.Requester,
				Detail: fmt.Sprintf("the %s notification %s to %s was given up on after %d attempts since %s: %v",
					e.Type, e.ID, name, p.Attempts+1, p.FailingSince.UTC().Format(time.RFC3339), err)}); aerr != nil {
				return fmt.Errorf("recording that request %s's %s notification to %s was given up on: %w", g.ID, e.Type, name, aerr)
			}
			p.Dead = append(p.Dead, n.Seq)
			if len(p.Dead) > 20 {
				p.Dead = p.Dead[len(p.Dead)-20:]
			}
			log.Error("notification dead-lettered: given up after retrying", "attempts", p.Attempts+1, "failing_since", p.FailingSince.UTC().Format(time.RFC3339), "error", err.Error())
			p.Through, p.Attempts, p.FailingSince, p.RetryAt = n.Seq, 0, time.Time{}, time.Time{}
			d.metrics.dead.WithLabelValues(name).Inc()
		default:
			if p.FailingSince.IsZero() {
				p.FailingSince = now
			}
			p.Attempts++
			wait := backoff(p.Attempts, d.cfg.RetryMin.or(DefaultRetryMin), d.cfg.RetryMax.or(DefaultRetryMax))
			var se *sendError
			if errors.As(err, &se) && se.retryAfter > wait {
				wait = min(se.retryAfter, d.cfg.RetryMax.or(DefaultRetryMax))
			}
			p.RetryAt = now.Add(wait)
			d.metrics.retried.WithLabelValues(name).Inc()
			log.Warn("notification not delivered; retrying", "attempt", p.Attempts, "retry_in", wait.String(), "error", err.Error())
			return record()
		}
		if err := record(); err != nil {
			return err
		}
	}
	return record()
}

// backoff is the pause after the n-th failed attempt: min, doubling, at
// most max.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return min(d, hi)
}
