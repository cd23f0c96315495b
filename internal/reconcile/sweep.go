package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/targets"
)

// open are the states in which a grant may have a user on a host.
var open = []ledger.State{ledger.Provisioning, ledger.Active, ledger.Revoking}

// recheck asks the Authorizer about every active grant and revokes those it
// no longer permits.
func (r *Reconciler) recheck(ctx context.Context, rep *Report) error {
	active, err := r.cfg.Ledger.List(ctx, ledger.Active)
	if err != nil {
		r.cfg.Metrics.failure("list")
		return fmt.Errorf("reading active grants for the policy check: %w", err)
	}
	denied := make(map[string]string)
	var errs []error
	for _, g := range active {
		ok, reason, err := r.cfg.Authorizer.Permits(ctx, g)
		switch {
		case err != nil:
			// Policy that cannot be read revokes nothing: an outage of the
			// policy store must not end everyone's access at once.
			r.cfg.Metrics.failure("policy")
			errs = append(errs, fmt.Errorf("checking grant %s against policy: %w", g.ID, err))
		case !ok:
			if reason == "" {
				reason = "denied"
			}
			denied[g.ID] = reason
		}
	}
	return errors.Join(append(errs, r.revokeAll(ctx, denied, rep)...)...)
}

// sweep removes Passport users that no open grant accounts for. The hosts
// are asked first and the ledger read after: a grant is on record before
// its user reaches any host, so every user the hosts report that belongs to
// a grant is explained by what the ledger holds by then.
func (r *Reconciler) sweep(ctx context.Context, rep *Report) (err error) {
	hosts, err := r.cfg.Hosts(ctx)
	if err != nil {
		r.cfg.Metrics.failure("sweep")
		return fmt.Errorf("listing the hosts to sweep: %w", err)
	}
	if len(hosts) == 0 {
		return nil
	}
	inv, err := r.cfg.Access.HostUsers(ctx, hosts)
	if err != nil {
		r.cfg.Metrics.failure("sweep")
		return fmt.Errorf("asking the hosts for their Passport users: %w", err)
	}
	if len(inv.Unreachable) > 0 {
		r.cfg.Log.Warn("sweep: hosts not asked; swept on a later pass", "hosts", strings.Join(inv.Unreachable, "; "))
	}
	// Recordings after the strays: a stray's removal collects its own.
	defer func() { err = errors.Join(err, r.collect(ctx, inv, rep)) }()
	explained := make(map[[2]string]bool)
	for _, s := range open {
		grants, err := r.cfg.Ledger.List(ctx, s)
		if err != nil {
			r.cfg.Metrics.failure("list")
			return fmt.Errorf("reading %s grants for the sweep: %w", s, err)
		}
		for _, g := range grants {
			for _, t := range g.Targets {
				if !t.State.Closed() {
					explained[[2]string{t.InstanceID, g.Username}] = true
				}
			}
		}
	}
	var strays []access.Stray
	for host, users := range inv.Users {
		for _, u := range users {
			if !explained[[2]string{host, u.Username}] {
				strays = append(strays, access.Stray{InstanceID: host, Username: u.Username, Platform: inv.Platforms[host]})
			}
		}
	}
	if len(strays) == 0 {
		return nil
	}
	removed, err := r.cfg.Access.RemoveStrays(ctx, r.cfg.Holder, strays)
	for _, s := range removed {
		r.cfg.Log.Info("sweep: removed stray Passport user", "host", s.InstanceID, "user", s.Username)
	}
	if err != nil {
		r.cfg.Metrics.failure("sweep")
	}
	rep.Strays += len(removed)
	r.cfg.Metrics.strays(len(removed))
	return err
}

// OnlineHosts lists, for the sweep, the online Linux and Windows nodes
// Systems Manager knows (with every tag in tags, when given): the nodes
// that can hold a Passport user and answer now.
func OnlineHosts(c targets.Lister, tags map[string]string) HostLister {
	return func(ctx context.Context) ([]string, error) {
		found, err := targets.Find(ctx, c, targets.Filter{PingStatus: "Online", Tags: tags})
		var ids []string
		for _, in := range found {
			if in.PlatformType == access.Linux || in.PlatformType == access.Windows {
				ids = append(ids, in.InstanceID)
			}
		}
		return ids, err
	}
}
