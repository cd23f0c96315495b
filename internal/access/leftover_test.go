package access

import (
	"context"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/lab/leftover"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// asUser runs scripts over SSH as g's user with its certificate.
func asUser(t *testing.T, h *sandbox.Host, g *Grant) leftover.Run {
	signer := credentialOf(t, g, nil).signer
	return func(script string) (string, error) { return labtest.Login(t, h, g.Username, signer, script) }
}

// asRoot runs scripts as root on h.
func asRoot(t *testing.T, h *sandbox.Host) leftover.Run {
	return func(script string) (string, error) { return labtest.OnHost(t, h, script), nil }
}

// TestDestroyLeavesNothingKeyedByTheUID: the granted user leaves something
// in every place its UID can own something; after Revoke (what terraform
// destroy runs) none of it is left, and the next request on the host gets
// another UID and sees nothing of the first.
func TestDestroyLeavesNothingKeyedByTheUID(t *testing.T) {
	l := startLabWith(t, lab.Options{Hosts: 1, Schedulers: true}, clock.NewFake(time.Now()))
	h := l.Hosts[0]
	first := grant(t, l.svc, request(newCA(t), l.hostIDs()...))
	uid := onHost(t, h, "id -u "+first.Username)
	if err := leftover.Leave(asUser(t, h, first), asRoot(t, h), uid, first.Username); err != nil {
		t.Fatal(err)
	}

	if err := l.svc.Revoke(context.Background(), testActor, first); err != nil {
		t.Fatal(err)
	}
	found, err := leftover.Owned(asRoot(t, h), uid, first.Username)
	if err != nil {
		t.Fatal(err)
	}
	if err := leftover.Clean(h.Info().InstanceID, found); err != nil {
		t.Errorf("after destroy of %s (uid %s): %v", first.Username, uid, err)
	}

	second := grant(t, l.svc, request(newCA(t), l.hostIDs()...))
	if next := onHost(t, h, "id -u "+second.Username); next == uid {
		t.Errorf("the next request's user %s got uid %s, the destroyed user's", second.Username, next)
	}
	seen, err := leftover.Visible(asUser(t, h, second))
	if err != nil {
		t.Fatal(err)
	}
	if err := leftover.Clean("what "+second.Username+" sees", seen); err != nil {
		t.Error(err)
	}
}
