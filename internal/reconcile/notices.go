package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// warn announces that due grant g's window ends soon, once per window,
// when it ends within the ledger's expiry notice. A ledger that does not
// announce makes no grant due for it, and says its notice is 0.
func (r *Reconciler) warn(ctx context.Context, g ledger.Grant, now time.Time, rep *Report) error {
	lead := r.cfg.Ledger.ExpiryNotice()
	if lead <= 0 || g.State != ledger.Active || !now.Before(g.ExpiresAt) || now.Before(g.ExpiresAt.Add(-lead)) {
		return nil
	}
	warned, err := r.cfg.Ledger.WarnExpiry(ctx, g.ID, r.cfg.Holder)
	if err != nil {
		r.cfg.Metrics.failure("ledger")
		return fmt.Errorf("announcing that grant %s expires soon: %w", g.ID, err)
	}
	if warned {
		rep.Warned++
	}
	return nil
}
