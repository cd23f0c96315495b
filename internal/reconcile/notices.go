package reconcile

import (
	"context"
	"errors"
	"fmt"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// warn announces each active grant whose window ends within the ledger's
// expiry notice, once per window. A ledger that does not announce makes
// no grant due for it, and WarnExpiry does nothing there.
func (r *Reconciler) warn(ctx context.Context, rep *Report) error {
	lead := r.cfg.Ledger.ExpiryNotice()
	if lead <= 0 {
		return nil
	}
	now := r.cfg.Now()
	due, err := r.cfg.Ledger.ListDue(ctx, now)
	if err != nil {
		r.cfg.Metrics.failure("list")
		return fmt.Errorf("reading due grants from the ledger: %w", err)
	}
	var errs []error
	for _, g := range due {
		if g.State != ledger.Active || !now.Before(g.ExpiresAt) || now.Before(g.ExpiresAt.Add(-lead)) {
			continue
		}
		warned, err := r.cfg.Ledger.WarnExpiry(ctx, g.ID, r.cfg.Holder)
		if err != nil {
			r.cfg.Metrics.failure("ledger")
			errs = append(errs, fmt.Errorf("announcing that grant %s expires soon: %w", g.ID, err))
			continue
		}
		if warned {
			rep.Warned++
		}
	}
	return errors.Join(errs...)
}
