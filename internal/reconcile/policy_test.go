package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// authorizerFunc adapts a function to Authorizer: these tests drive the
// hook; what policy says is internal/policy's to test.
type authorizerFunc func(ctx context.Context, g ledger.Grant) (bool, string, error)

func (f authorizerFunc) Permits(ctx context.Context, g ledger.Grant) (bool, string, error) {
	return f(ctx, g)
}

func TestPolicyRecheckRevokesWhatIsNoLongerPermitted(t *testing.T) {
	r := newRig(t, 0)
	ctx := context.Background()
	n := newCountingNode(r, 7)
	caKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(newCA(t).PublicKey())))
	start := r.clock.Now()
	for i, user := range []string{"pp-kept", "pp-denied"} {
		if _, err := r.ledger.Create(ctx, ledger.Grant{
			ID: fmt.Sprintf("ar-%016x", 0xd0+i), Requester: "alice@example.com", Reason: "policy recheck", Username: user,
			Serial: uint64(i + 1), CAPublicKey: caKey, IssuedAt: start, ExpiresAt: start.Add(time.Hour), State: ledger.Active,
			Targets: []ledger.Target{{InstanceID: n.info.InstanceID, State: ledger.Active}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	policyDown := true
	rec, err := New(Config{
		Ledger: r.ledger, Access: r.service(t, r.ledger, "reconciler/p"), Holder: "reconciler/p", Now: r.clock.Now,
		Authorizer: authorizerFunc(func(_ context.Context, g ledger.Grant) (bool, string, error) {
			if policyDown {
				return false, "", errors.New("policy parameter unreadable")
			}
			if g.Username == "pp-denied" {
				return false, `group "oncall" no longer includes alice@example.com`, nil
			}
			return true, "", nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}

	// Policy that cannot be read ends nobody's access.
	if rep, err := rec.Pass(ctx); err == nil || rep.Revoked != 0 {
		t.Fatalf("pass with policy unreadable: %+v, %v; want an error and nothing revoked", rep, err)
	}
	policyDown = false
	if rep, err := rec.Pass(ctx); err != nil || rep.Denied != 1 || rep.Revoked != 1 {
		t.Fatalf("pass after policy tightened: %+v, %v; want one grant revoked", rep, err)
	}
	if n.count("pp-denied") != 1 || n.count("pp-kept") != 0 {
		t.Errorf("revokes: denied %d, kept %d; want 1 and 0", n.count("pp-denied"), n.count("pp-kept"))
	}
	if g := r.record(t, "ar-00000000000000d1"); g.State != ledger.Revoked {
		t.Errorf("denied grant is %s, want revoked (its window had not ended)", g.State)
	}
	events, _ := r.ledger.Events(ctx, ledger.Filter{GrantID: "ar-00000000000000d1"})
	if len(events) == 0 || events[0].Action != ledger.ActionDenied || !strings.Contains(events[0].Detail, "oncall") {
		t.Errorf("audit trail of the denied grant: %+v; want a denied event first, saying why", events)
	}
}
