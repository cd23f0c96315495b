package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/passport-access/terraform-provider-passport/internal/access"
)

// collect takes the session recordings off the Linux hosts that answered
// this pass's inventory, and the Security log events of the users of
// active requests off their Windows targets, every CollectEvery, and
// deletes those past their retention: a user the host's own sweep
// removed, or one whose revoke could not collect, loses nothing.
func (r *Reconciler) collect(ctx context.Context, inv access.Inventory, rep *Report) error {
	if !r.cfg.Access.Records() {
		return nil
	}
	now := r.cfg.Now()
	r.mu.Lock()
	due := r.lastCollect.IsZero() || now.Sub(r.lastCollect) >= r.cfg.CollectEvery
	if due {
		r.lastCollect = now
	}
	r.mu.Unlock()
	var errs []error
	if due {
		var hosts []string
		for host := range inv.Users {
			if inv.Platforms[host] != access.Windows {
				hosts = append(hosts, host)
			}
		}
		collected := r.cfg.Access.CollectRecordings(ctx, r.cfg.Holder, hosts, nil)
		windows, err := r.cfg.Access.ActiveWindowsUsers(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("listing the Windows users whose events to collect: %w", err))
		}
		collected = append(collected, r.cfg.Access.CollectWindowsEvents(ctx, r.cfg.Holder, windows)...)
		for _, c := range collected {
			rep.Recordings += len(c.Stored)
			if c.Err != nil {
				r.cfg.Metrics.failure("recordings")
				errs = append(errs, fmt.Errorf("collecting recordings: %w", c.Err))
			}
		}
	}
	n, err := r.cfg.Access.ExpireRecordings(ctx, r.cfg.Holder)
	rep.RecordingsExpired += n
	if err != nil {
		errs = append(errs, fmt.Errorf("deleting expired recordings: %w", err))
	}
	return errors.Join(errs...)
}
