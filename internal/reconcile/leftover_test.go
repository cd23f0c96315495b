package reconcile

import (
	"crypto/ed25519"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/lab/leftover"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// asUser runs scripts over SSH as g's user, with its certificate and priv.
func asUser(t *testing.T, h *sandbox.Host, g *access.Grant, priv ed25519.PrivateKey) leftover.Run {
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer := labtest.CertSigner(t, key, g.Certificate)
	return func(script string) (string, error) { return labtest.Login(t, h, g.Username, signer, script) }
}

// asRoot runs scripts as root on h.
func asRoot(t *testing.T, h *sandbox.Host) leftover.Run {
	return func(script string) (string, error) { return labtest.OnHost(t, h, script), nil }
}

// TestExpiryLeavesNothingKeyedByTheUID: the reconciler ends a window
// nobody destroyed, and nothing the user's UID owned is left; the next
// request gets another UID and sees nothing of the first.
func TestExpiryLeavesNothingKeyedByTheUID(t *testing.T) {
	r := newRigWith(t, lab.Options{Hosts: 1, Schedulers: true})
	h := r.lab.Hosts[0]
	key, priv := newKey(t)
	first := r.grant(t, newCA(t), key, r.hostIDs()...)
	uid := onHost(t, h, "id -u "+first.Username)
	if err := leftover.Leave(asUser(t, h, first, priv), asRoot(t, h), uid, first.Username); err != nil {
		t.Fatal(err)
	}

	r.clock.Advance(time.Hour + time.Second)
	if rep := pass(t, r.reconciler(t, r.ledger, "reconciler/a", nil)); rep.Revoked != 1 {
		t.Fatalf("pass after the window: %+v, want the grant revoked", rep)
	}
	found, err := leftover.Owned(asRoot(t, h), uid, first.Username)
	if err != nil {
		t.Fatal(err)
	}
	if err := leftover.Clean(h.Info().InstanceID, found); err != nil {
		t.Errorf("after the reconciler ended %s (uid %s): %v", first.Username, uid, err)
	}

	// Back to the hosts' own time, so the next certificate is valid there.
	r.clock.Advance(-time.Hour - time.Second)
	key2, priv2 := newKey(t)
	second := r.grant(t, newCA(t), key2, r.hostIDs()...)
	if next := onHost(t, h, "id -u "+second.Username); next == uid {
		t.Errorf("the next request's user %s got uid %s, the expired user's", second.Username, next)
	}
	seen, err := leftover.Visible(asUser(t, h, second, priv2))
	if err != nil {
		t.Fatal(err)
	}
	if err := leftover.Clean("what "+second.Username+" sees", seen); err != nil {
		t.Error(err)
	}
}
