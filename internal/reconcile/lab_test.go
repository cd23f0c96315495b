package reconcile

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// These tests run reconcile passes against the lab: the real SSM client
// and fleet, sandbox hosts with a real sshd, and a sqlite ledger. Passport's
// clock is fake and moved by the tests; the hosts keep the real time.

const stuckAfter = 15 * time.Minute

// rig is a lab, a ledger, the Service a person's Terraform run would use,
// and a way to make reconcilers on the same ledger.
type rig struct {
	lab    *lab.Lab
	ssm    *ssmsdk.Client
	clock  *clock.Fake
	ledger *ledger.Ledger
	// ledgerPath is the ledger's sqlite file, for more connections to it.
	ledgerPath string
	// person acts for the requester, as the provider does.
	person *access.Service
}

func newRig(t testing.TB, hosts int) *rig {
	t.Helper()
	return newRigWith(t, lab.Options{Hosts: hosts})
}

// newRigWith starts a lab with opts (its clock and directory set here).
func newRigWith(t testing.TB, opts lab.Options) *rig {
	t.Helper()
	if opts.Hosts > 0 {
		if err := sandbox.Available(); err != nil {
			t.Skip(err)
		}
		if testing.Short() {
			t.Skip("-short: sandbox host tests take tens of seconds each")
		}
	}
	// Short: host agent sockets live under it (107-byte limit).
	dir, err := os.MkdirTemp("", "rec")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clk := clock.NewFake(time.Now().UTC())
	opts.Dir, opts.Now = dir, clk.Now
	l, err := lab.Start(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); os.RemoveAll(dir) })
	r := &rig{
		lab:   l,
		clock: clk,
		ssm:   ssmsdk.NewFromConfig(l.AWSConfig()),
	}
	r.ledgerPath = filepath.Join(t.TempDir(), "ledger.db")
	r.ledger = r.openLedger(t, r.ledgerPath)
	r.person = r.service(t, r.ledger, "")
	return r
}

func (r *rig) openLedger(t testing.TB, path string) *ledger.Ledger {
	t.Helper()
	led, err := ledger.Open(context.Background(), "sqlite://"+path, ledger.Options{Now: r.clock.Now, StuckAfter: stuckAfter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { led.Close() })
	return led
}

func (r *rig) service(t testing.TB, led *ledger.Ledger, actor string) *access.Service {
	t.Helper()
	svc, err := access.New(access.Config{
		Fleet:   fleet.New(r.ssm, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond, ThrottleBackoff: 10 * time.Millisecond}),
		Now:     r.clock.Now,
		Timeout: time.Minute,
		Ledger:  led,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// reconciler returns a Reconciler named name on led that sweeps the lab's
// sandbox and Windows hosts.
func (r *rig) reconciler(t *testing.T, led *ledger.Ledger, name string, reg prometheus.Registerer) *Reconciler {
	t.Helper()
	var m *Metrics
	if reg != nil {
		m = NewMetrics(reg)
	}
	rec, err := New(Config{
		Ledger:  led,
		Access:  r.service(t, led, name),
		Holder:  name,
		Lease:   5 * time.Minute,
		Now:     r.clock.Now,
		Hosts:   func(context.Context) ([]string, error) { return r.hostIDs(), nil },
		Metrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (r *rig) hostIDs() []string {
	var ids []string
	for _, h := range r.lab.Hosts {
		ids = append(ids, h.Info().InstanceID)
	}
	for _, h := range r.lab.Windows {
		ids = append(ids, h.Info().InstanceID)
	}
	return ids
}

func (r *rig) grant(t *testing.T, ca *sshca.CA, key ssh.PublicKey, targets ...string) *access.Grant {
	t.Helper()
	g, err := r.person.Grant(context.Background(), access.Request{
		Reason:    "rotate the web tier's TLS certificates",
		Targets:   targets,
		Duration:  time.Hour,
		CA:        ca,
		PublicKey: string(ssh.MarshalAuthorizedKey(key)),
		Requester: "alice@example.com",
	})
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	return g
}

func pass(t *testing.T, rec *Reconciler) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := rec.Pass(ctx)
	if err != nil {
		t.Logf("pass: %v", err)
	}
	return rep
}

func (r *rig) record(t *testing.T, id string) ledger.Grant {
	t.Helper()
	g, err := r.ledger.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// onHost runs a test's own shell commands as root on a sandbox host.
var onHost = labtest.OnHost

// passportUsers lists what of Passport's users a host still holds: members
// of its group and grant records.
func passportUsers(t *testing.T, h *sandbox.Host) string {
	t.Helper()
	return onHost(t, h, `{ getent group passport | cut -d: -f4 | tr ',' '\n'; ls /var/lib/passport/grants 2>/dev/null; } | sort -u | tr '\n' ' '`)
}

func hasUser(t *testing.T, h *sandbox.Host, user string) bool {
	t.Helper()
	return onHost(t, h, "if id -u "+user+" >/dev/null 2>&1; then echo yes; else echo no; fi") == "yes"
}

func newKey(t *testing.T) (ssh.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, priv
}

func newCA(t testing.TB) *sshca.CA {
	t.Helper()
	ca, err := sshca.Generate(sshca.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// login tries g's certificate on h and returns the error, nil when it got in.
func login(t *testing.T, h *sandbox.Host, g *access.Grant, priv ed25519.PrivateKey) error {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(g.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(pub.(*ssh.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", h.SSHAddr(), &ssh.ClientConfig{
		User:            g.Username,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // the host is ours; the login is what is tested
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return err
	}
	return c.Close()
}

func TestWindowEndsWithoutDestroy(t *testing.T) {
	r := newRig(t, 2)
	key, priv := newKey(t)
	g := r.grant(t, newCA(t), key, r.hostIDs()...)
	for _, h := range r.lab.Hosts {
		if err := login(t, h, g, priv); err != nil {
			t.Fatalf("login to %s before the window ends: %v", h.Info().InstanceID, err)
		}
	}
	reg := prometheus.NewRegistry()
	rec := r.reconciler(t, r.ledger, "reconciler/a", reg)
	if rep := pass(t, rec); rep.Revoked != 0 || rep.Strays != 0 {
		t.Fatalf("a pass inside the window acted: %+v", rep)
	}
	if err := login(t, r.lab.Hosts[0], g, priv); err != nil {
		t.Fatalf("login after a pass inside the window: %v", err)
	}

	r.clock.Advance(time.Hour + time.Second)
	if rep := pass(t, rec); rep.Revoked != 1 {
		t.Fatalf("pass after the window: %+v, want the grant revoked", rep)
	}
	for _, h := range r.lab.Hosts {
		if hasUser(t, h, g.Username) {
			t.Errorf("%s still has %s after the window ended", h.Info().InstanceID, g.Username)
		}
		if err := login(t, h, g, priv); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Errorf("login to %s after the window: %v, want a refusal", h.Info().InstanceID, err)
		}
	}
	if rec := r.record(t, g.ID); rec.State != ledger.Expired || !rec.Lease.Until.IsZero() {
		t.Errorf("record: %s, lease %+v; want expired and released", rec.State, rec.Lease)
	}
	events, _ := r.ledger.Events(context.Background(), ledger.Filter{GrantID: g.ID, Person: "reconciler/a"})
	if len(events) != 3 { // revoked on each host, expired
		t.Errorf("the reconciler wrote %d events, want 3: %+v", len(events), events)
	}
	wantMetric(t, reg, "passport_reconcile_revocations_total", map[string]string{"reason": "expired"}, 1)
	wantMetric(t, reg, "passport_oldest_overdue_grant_seconds", nil, 0)
}

func TestKilledApplyLeavesNothing(t *testing.T) {
	r := newRig(t, 2)
	ctx := context.Background()
	ca := newCA(t)
	key, _ := newKey(t)
	// What a killed apply leaves: the record, written before any host was
	// touched, and the user on the first host only.
	g := &access.Grant{
		ID: "ar-00000000000000aa", Username: "pp-killedapply", Requester: "alice@example.com",
		Reason: "an apply killed half-way", IssuedAt: r.clock.Now(), ExpiresAt: r.clock.Now().Add(time.Hour),
		PublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), CAPublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey()))),
		Serial: 77,
	}
	var targets []ledger.Target
	for _, id := range r.hostIDs() {
		targets = append(targets, ledger.Target{InstanceID: id, State: ledger.Provisioning})
		g.Targets = append(g.Targets, access.Target{InstanceID: id, Status: access.Active})
	}
	if _, err := r.ledger.Create(ctx, ledger.Grant{ID: g.ID, Requester: g.Requester, Reason: g.Reason, Username: g.Username,
		Targets: targets, Serial: g.Serial, CAPublicKey: g.CAPublicKey, PublicKey: g.PublicKey,
		IssuedAt: g.IssuedAt, ExpiresAt: g.ExpiresAt, State: ledger.Provisioning}); err != nil {
		t.Fatal(err)
	}
	provisionDirectly(t, r.lab.Hosts[0], g)
	if got := passportUsers(t, r.lab.Hosts[0]); !strings.Contains(got, g.Username) {
		t.Fatalf("setup: %s not provisioned (host has %q)", g.Username, got)
	}

	rec := r.reconciler(t, r.ledger, "reconciler/a", nil)
	if rep := pass(t, rec); rep.Revoked != 0 || rep.Strays != 0 {
		t.Fatalf("a pass while the apply may still run acted: %+v", rep)
	}
	r.clock.Advance(stuckAfter + time.Second)
	if rep := pass(t, rec); rep.Revoked != 1 {
		t.Fatalf("pass after the apply was given up: %+v, want the grant finished", rep)
	}
	for _, h := range r.lab.Hosts {
		if got := passportUsers(t, h); got != "" {
			t.Errorf("%s still holds Passport users %q", h.Info().InstanceID, got)
		}
	}
	if got := r.record(t, g.ID); !got.State.Closed() {
		t.Errorf("record is %s, want closed", got.State)
	}
}

// provisionDirectly runs the provision program on one host the way the
// killed apply's fan-out reached it.
func provisionDirectly(t *testing.T, h *sandbox.Host, g *access.Grant) {
	t.Helper()
	script, err := hostscript.Provision(hostscript.Grant{
		Username: g.Username, RequestID: g.ID, Requester: g.Requester, CAPublicKey: g.CAPublicKey,
		ExpiresAt: g.ExpiresAt, Serial: g.Serial,
	})
	if err != nil {
		t.Fatal(err)
	}
	onHost(t, h, script)
}

func TestOfflineHostIsRevokedWhenItReturns(t *testing.T) {
	r := newRig(t, 2)
	key, _ := newKey(t)
	g := r.grant(t, newCA(t), key, r.hostIDs()...)
	down := r.lab.Hosts[1]
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	rec := r.reconciler(t, r.ledger, "reconciler/a", reg)
	r.clock.Advance(time.Hour + 30*time.Second)
	if rep := pass(t, rec); rep.Pending != 1 {
		t.Fatalf("pass with a host down: %+v, want the grant pending", rep)
	}
	if got := metric(t, reg, "passport_oldest_overdue_grant_seconds", nil); got < 30 {
		t.Errorf("oldest overdue grant with a host down: %vs, want at least 30s", got)
	}
	wantMetric(t, reg, "passport_grants", map[string]string{"state": "revoking"}, 1)
	got := r.record(t, g.ID)
	if got.State != ledger.Revoking || got.Targets[0].State != ledger.Expired || got.Targets[1].State != ledger.Revoking {
		t.Fatalf("record with a host down: %s %+v; want revoking, the answering host expired", got.State, got.Targets)
	}
	if hasUser(t, r.lab.Hosts[0], g.Username) {
		t.Error("the answering host still has the user")
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := down.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if !hasUser(t, down, g.Username) {
		t.Fatal("setup: the host lost the user while it was down")
	}
	// The very next pass, not StuckAfter later: the window is over.
	r.clock.Advance(time.Minute)
	if rep := pass(t, rec); rep.Revoked != 1 {
		t.Fatalf("pass after the host returned: %+v, want the grant revoked", rep)
	}
	if hasUser(t, down, g.Username) {
		t.Error("the returned host still has the user")
	}
	if got := r.record(t, g.ID); got.State != ledger.Expired {
		t.Errorf("record: %s, want expired", got.State)
	}
	wantMetric(t, reg, "passport_oldest_overdue_grant_seconds", nil, 0)
}

func TestSweepRemovesStrayUsersOnly(t *testing.T) {
	r := newRig(t, 1)
	h := r.lab.Hosts[0]
	key, priv := newKey(t)
	live := r.grant(t, newCA(t), key, r.hostIDs()...)
	// Behind Passport's back: a member of Passport's group, and a user of
	// the host's own.
	onHost(t, h, "useradd -m -G passport pp-backdoor && useradd -m dbadmin")

	rec := r.reconciler(t, r.ledger, "reconciler/a", nil)
	if rep := pass(t, rec); rep.Strays != 1 || rep.Revoked != 0 {
		t.Fatalf("pass: %+v, want one stray removed and nothing else", rep)
	}
	if hasUser(t, h, "pp-backdoor") {
		t.Error("the stray Passport user is still there")
	}
	if !hasUser(t, h, "dbadmin") {
		t.Error("the sweep removed a user that is not Passport's")
	}
	if err := login(t, h, live, priv); err != nil {
		t.Errorf("the live grant's login failed after the sweep: %v", err)
	}
	events, _ := r.ledger.Events(context.Background(), ledger.Filter{Person: "pp-backdoor"})
	if len(events) != 1 || events[0].Action != ledger.ActionSwept || events[0].Target != h.Info().InstanceID {
		t.Errorf("audit events about the stray: %+v, want one swept event on %s", events, h.Info().InstanceID)
	}
}

// TestFailedDestroyIsFinishedOnTheNextPass: a destroy that could not reach
// a stopped host is not left for StuckAfter. Every pass retries it, with a
// growing pause while the host stays down, and the first pass after the
// host is back ends the login there.
func TestFailedDestroyIsFinishedOnTheNextPass(t *testing.T) {
	r := newRig(t, 2)
	key, priv := newKey(t)
	g := r.grant(t, newCA(t), key, r.hostIDs()...)
	down := r.lab.Hosts[1]
	if err := down.Stop(); err != nil {
		t.Fatal(err)
	}
	err := r.person.Revoke(context.Background(), g.Requester, g)
	if err == nil || !strings.Contains(err.Error(), down.Info().InstanceID) {
		t.Fatalf("destroy with %s stopped: %v, want an error naming it", down.Info().InstanceID, err)
	}
	rec := r.reconciler(t, r.ledger, "reconciler/a", nil)

	// While the host stays down: a retry on the next pass, then none until
	// the pause after the second failure has passed.
	r.clock.Advance(time.Second)
	if rep := pass(t, rec); rep.Due != 1 || rep.Pending != 1 {
		t.Fatalf("first pass after the failed destroy: %+v, want the grant retried", rep)
	}
	if rep := pass(t, rec); rep.Due != 0 {
		t.Fatalf("a pass right after a failed retry: %+v, want it to wait", rep)
	}
	if got := r.record(t, g.ID); got.RevokeFailures() != 2 || !got.DueAt.Equal(got.UpdatedAt.Add(time.Minute)) {
		t.Errorf("record after two failed attempts: failures %d, due %v after its last write; want 2 and a minute",
			got.RevokeFailures(), got.DueAt.Sub(got.UpdatedAt))
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := down.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := login(t, down, g, priv); err != nil {
		t.Fatalf("setup: the destroyed user cannot log in to the returned host before the pass: %v", err)
	}
	r.clock.Advance(time.Minute)
	if rep := pass(t, rec); rep.Revoked != 1 {
		t.Fatalf("the pass after the host returned: %+v, want the grant revoked", rep)
	}
	if err := login(t, down, g, priv); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("login to the returned host after the pass: %v, want a refusal", err)
	}
	if got := r.record(t, g.ID); got.State != ledger.Revoked {
		t.Errorf("record: %s, want revoked (the window has not ended)", got.State)
	}
}
