package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/collect"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// TestHostSweepLeavesRecordingsForTheReconciler: when a host's own sweep
// removes an expired user (Passport did not revoke it), the user's
// recordings stay on the host and the reconciler's next pass collects
// them; a later pass deletes them from the host.
func TestHostSweepLeavesRecordingsForTheReconciler(t *testing.T) {
	r := newRig(t, 1)
	h := r.lab.Hosts[0]
	id := h.Info().InstanceID
	key, priv := newKey(t)
	g := r.grant(t, newCA(t), key, id)

	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(g.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	certSigner, _ := ssh.NewCertSigner(pub.(*ssh.Certificate), signer)
	if out, err := labtest.Login(t, h, g.Username, certSigner, "echo swept-but-kept"); err != nil || out != "swept-but-kept" {
		t.Fatalf("login: %q, %v", out, err)
	}
	// The host's own sweep, as at the window's end: the grant record says
	// the window is over, and the sweep removes the user.
	onHost(t, h, "sed -i 's/^expires=.*/expires=1000000000/' "+hostscript.GrantsDir+"/"+g.Username)
	onHost(t, h, hostscript.Sweep())
	if hasUser(t, h, g.Username) {
		t.Fatal("the host's sweep left the user")
	}

	store, err := collect.NewStore(r.lab.AWSConfig(), lab.RecordingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := access.New(access.Config{
		Fleet:      fleet.New(r.ssm, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond}),
		Now:        r.clock.Now,
		Timeout:    time.Minute,
		Ledger:     r.ledger,
		Recordings: &access.Recordings{Store: store},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := New(Config{Ledger: r.ledger, Access: svc, Holder: "reconciler/rec", Now: r.clock.Now,
		Hosts: func(context.Context) ([]string, error) { return r.hostIDs(), nil }})
	if err != nil {
		t.Fatal(err)
	}
	if rep := pass(t, rec); rep.Recordings != 1 {
		t.Fatalf("the pass collected %d recordings, want 1", rep.Recordings)
	}
	recs, err := r.ledger.Recordings(context.Background(), ledger.RecordingFilter{RequestID: g.ID})
	if err != nil || len(recs) != 1 || recs[0].InstanceID != id || recs[0].Username != g.Username {
		t.Fatalf("indexed: %+v, %v", recs, err)
	}
	if obj, ok := r.lab.S3.Object(lab.RecordingsBucket, recs[0].Key); !ok || len(obj) == 0 {
		t.Fatalf("no object at %s", recs[0].Key)
	}
	// Within CollectEvery a pass does not run the hosts again; after it,
	// the stored session goes from the host with its user's directory.
	pass(t, rec)
	if left := onHost(t, h, "ls "+hostscript.RecordingsDir); !strings.Contains(left, g.Username) {
		t.Errorf("a pass within CollectEvery collected again: the host holds %q", left)
	}
	r.clock.Advance(DefaultCollectEvery)
	pass(t, rec)
	if left := onHost(t, h, "ls "+hostscript.RecordingsDir); strings.Contains(left, g.Username) {
		t.Errorf("the host still holds the stored recordings of %s: %q", g.Username, left)
	}
}
