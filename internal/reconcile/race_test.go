package reconcile

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// afterInventory is a sandbox host whose first inventory answer waits for
// hook to run: what happens on the fleet between the sweep's question to
// the hosts and its reading of the ledger, placed there every time instead
// of by luck.
type afterInventory struct {
	*sandbox.Host
	once sync.Once
	hook func()
}

func (h *afterInventory) Run(ctx context.Context, s node.Script) (node.Result, error) {
	res, err := h.Host.Run(ctx, s)
	if err == nil && strings.Contains(s.Source, "\naction=inventory\n") {
		h.once.Do(h.hook)
	}
	return res, err
}

// TestSweepRacingADestroyRecordsNoStray: a destroy that finishes while the
// sweep asks the hosts leaves the hosts' answer naming a user whose grant
// the ledger has closed by the time the sweep reads it. That user was
// properly revoked; the audit trail must not call it a stray.
func TestSweepRacingADestroyRecordsNoStray(t *testing.T) {
	r := newRig(t, 1)
	h := r.lab.Hosts[0]
	key, priv := newKey(t)
	g := r.grant(t, newCA(t), key, r.hostIDs()...)
	destroyed := make(chan error, 1)
	r.lab.SSM.AddNode(&afterInventory{Host: h, hook: func() {
		destroyed <- r.person.Revoke(context.Background(), g.Requester, g)
	}})

	rec := r.reconciler(t, r.ledger, "reconciler/a", nil)
	rep := pass(t, rec)
	if err := <-destroyed; err != nil {
		t.Fatalf("the destroy during the sweep: %v", err)
	}
	if got := r.record(t, g.ID); got.State != ledger.Revoked {
		t.Fatalf("setup: the grant is %s after its destroy, want revoked", got.State)
	}
	if rep.Strays != 0 {
		t.Errorf("pass: %+v, want no stray: the destroy removed the user", rep)
	}
	events, err := r.ledger.Events(context.Background(), ledger.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Action == ledger.ActionSwept {
			t.Errorf("the sweep recorded a properly revoked user as stray: %s", e.String())
		}
	}
	if hasUser(t, h, g.Username) || login(t, h, g, priv) == nil {
		t.Errorf("%s can still log in after the destroy", g.Username)
	}
}
