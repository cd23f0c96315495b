package access

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// testActor is who the tests say changes and ends grants.
const testActor = "operator@example.com"

func TestGrantLogsInOnEveryTarget(t *testing.T) {
	l := startLab(t, 2, 0)
	ca := newCA(t)

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sshPub, _ := ssh.NewPublicKey(pub)
	given := string(ssh.MarshalAuthorizedKey(sshPub))

	tests := []struct {
		name      string
		publicKey string
		priv      ed25519.PrivateKey
		sudo      bool
	}{
		{name: "generated key with sudo", sudo: true},
		{name: "given key without sudo", publicKey: given, priv: priv},
	}
	grants := make([]*Grant, len(tests))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request(ca, l.hostIDs()...)
			req.PublicKey, req.Sudo = tt.publicKey, tt.sudo
			g := grant(t, l.svc, req)
			grants[i] = g
			if (g.PrivateKey != "") != (tt.publicKey == "") {
				t.Errorf("PrivateKey set = %v, want it only for a generated key", g.PrivateKey != "")
			}
			if !strings.HasPrefix(g.Username, DefaultUsernamePrefix) || len(g.Username) > 20 {
				t.Errorf("username %q", g.Username)
			}
			cert := certificate(t, g)
			if !slices.Equal(cert.ValidPrincipals, []string{g.Username}) || cert.Serial != g.Serial ||
				!strings.Contains(cert.KeyId, g.ID) || !strings.Contains(cert.KeyId, "alice") {
				t.Errorf("certificate principals %v, serial %d (grant %d), key id %q", cert.ValidPrincipals, cert.Serial, g.Serial, cert.KeyId)
			}
			if _, ok := cert.Permissions.Extensions["permit-agent-forwarding"]; ok || len(cert.Permissions.Extensions) != 1 {
				t.Errorf("certificate extensions %v, want permit-pty only", cert.Permissions.Extensions)
			}
			if got := time.Unix(int64(cert.ValidBefore), 0); !got.Equal(g.ExpiresAt) || g.ExpiresAt.Sub(g.IssuedAt) != time.Hour {
				t.Errorf("certificate ends %s, grant %s", got, g.ExpiresAt)
			}
			c := credentialOf(t, g, tt.priv)
			for i, h := range l.Hosts {
				if g.Targets[i].Status != Active || g.Targets[i].Address != h.Info().IPAddress {
					t.Errorf("target %d: %+v", i, g.Targets[i])
				}
				mustLogIn(t, h, g.Username, c.signer)
				if got, err := opensshLogin(t, h, g.Username, c); err != nil || got != g.Username {
					t.Errorf("OpenSSH login to %s: %q, %v", h.Info().InstanceID, got, err)
				}
				_, err := login(t, h, g.Username, c.signer, "sudo -n true")
				if (err == nil) != tt.sudo {
					t.Errorf("sudo -n true on %s: err %v, sudo granted %v", h.Info().InstanceID, err, tt.sudo)
				}
			}
		})
	}
	if grants[0] == nil || grants[1] == nil {
		return
	}
	t.Run("a certificate of one grant cannot log in as another's user", func(t *testing.T) {
		a, b := grants[0], grants[1]
		if a.Username == b.Username {
			t.Fatal("two grants got the same username")
		}
		mustBeRefused(t, l.Hosts[0], b.Username, credentialOf(t, a, nil).signer, "grant A's certificate as grant B's user")
	})
}

func TestRevokeRemovesEverything(t *testing.T) {
	l := startLab(t, 2, 0)
	ca := newCA(t)
	g := grant(t, l.svc, request(ca, l.hostIDs()...))
	c := credentialOf(t, g, nil)
	uids := map[string]string{}
	for _, h := range l.Hosts {
		// A process left running after the person logs out, as a
		// forgotten tmux or a deliberate backdoor would be.
		if out, err := login(t, h, g.Username, c.signer, "nohup sleep 600 >/dev/null 2>&1 & echo started"); err != nil {
			t.Fatalf("starting a process on %s: %v %s", h.Info().InstanceID, err, out)
		}
		uids[h.Info().InstanceID] = onHost(t, h, "id -u "+g.Username)
		// The shell forks before sleep execs: give it a moment to become
		// a process named sleep.
		if onHost(t, h, "for i in $(seq 50); do pgrep -u "+uids[h.Info().InstanceID]+" sleep >/dev/null && echo running && exit 0; sleep 0.1; done; echo absent") != "running" {
			t.Fatalf("the user's process is not running on %s", h.Info().InstanceID)
		}
	}

	if err := l.svc.Revoke(context.Background(), testActor, g); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	for _, tg := range g.Targets {
		if tg.Status != Revoked {
			t.Errorf("target %s is %s after Revoke", tg.InstanceID, tg.Status)
		}
	}
	for _, h := range l.Hosts {
		if hasUser(t, h, g.Username) {
			t.Errorf("%s still has user %s or its home", h.Info().InstanceID, g.Username)
		}
		if out := onHost(t, h, "pgrep -u "+uids[h.Info().InstanceID]+" || true"); out != "" {
			t.Errorf("%s still runs the user's processes: %s", h.Info().InstanceID, out)
		}
		mustBeRefused(t, h, g.Username, c.signer, "login after revoke")
	}

	t.Run("revoking twice is fine", func(t *testing.T) {
		l.Server.ResetCalls()
		if err := l.svc.Revoke(context.Background(), testActor, g); err != nil {
			t.Fatal(err)
		}
		if n := l.Server.Calls()["AmazonSSM.SendCommand"]; n != 0 {
			t.Errorf("a revoked grant cost %d SendCommand calls", n)
		}
		// As the reconciler would, not knowing the first revoke landed.
		for i := range g.Targets {
			g.Targets[i].Status = Active
		}
		if err := l.svc.Revoke(context.Background(), testActor, g); err != nil {
			t.Fatalf("revoking on clean hosts: %v", err)
		}
	})
}

func TestExtendMovesTheWindow(t *testing.T) {
	l := startLab(t, 1, 0)
	ca := newCA(t)
	h := l.Hosts[0]
	g := grant(t, l.svc, request(ca, l.hostIDs()...))
	recordExpiry := func() int64 {
		t.Helper()
		v, err := strconv.ParseInt(onHost(t, h, "sed -n 's/^expires=//p' /var/lib/passport/grants/"+g.Username), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := recordExpiry(); got != g.ExpiresAt.Unix() {
		t.Fatalf("host records expiry %d, grant %d", got, g.ExpiresAt.Unix())
	}

	l.clock.Advance(40 * time.Minute)
	longer, err := l.svc.Extend(context.Background(), testActor, g, ca, 3*time.Hour)
	if err != nil {
		t.Fatalf("Extend: %v", err)
	}
	want := g.IssuedAt.Add(3 * time.Hour)
	cert := certificate(t, longer)
	if !longer.ExpiresAt.Equal(want) || int64(cert.ValidBefore) != want.Unix() {
		t.Errorf("extended to %s, certificate until %d; want %s", longer.ExpiresAt, cert.ValidBefore, want)
	}
	if longer.PublicKey != g.PublicKey || longer.Username != g.Username || !slices.Equal(cert.ValidPrincipals, []string{g.Username}) {
		t.Error("the extended certificate is not for the same key and user")
	}
	if got := recordExpiry(); got != want.Unix() {
		t.Errorf("host records expiry %d after Extend, want %d", got, want.Unix())
	}
	longer.PrivateKey = g.PrivateKey
	mustLogIn(t, h, g.Username, credentialOf(t, longer, nil).signer)

	shorter, err := l.svc.Extend(context.Background(), testActor, longer, ca, 50*time.Minute)
	if err != nil {
		t.Fatalf("shortening: %v", err)
	}
	if got := recordExpiry(); got != g.IssuedAt.Add(50*time.Minute).Unix() || shorter.ExpiresAt != g.IssuedAt.Add(50*time.Minute) {
		t.Errorf("after shortening, host records %d and grant %s", got, shorter.ExpiresAt)
	}

	for name, tc := range map[string]struct {
		ca       *sshca.CA
		duration time.Duration
		field    string
	}{
		"a window that has already ended": {ca, 30 * time.Minute, "duration"},
		"beyond the hard cap":             {ca, 13 * time.Hour, "duration"},
		"another CA":                      {newCA(t), 2 * time.Hour, "certificate_authority"},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := l.svc.Extend(context.Background(), testActor, shorter, tc.ca, tc.duration); err == nil || !strings.HasPrefix(err.Error(), tc.field) {
				t.Errorf("Extend: %v; want an error naming %s", err, tc.field)
			}
		})
	}
	if got := recordExpiry(); got != shorter.ExpiresAt.Unix() {
		t.Errorf("a refused Extend changed the host's expiry to %d", got)
	}
}

func TestStoppedTargetIsRefusedBeforeAnyHostIsTouched(t *testing.T) {
	l := startLab(t, 2, 0)
	stopped := l.Hosts[1]
	if err := stopped.Stop(); err != nil {
		t.Fatal(err)
	}
	l.Server.ResetCalls()
	g, err := l.svc.Grant(context.Background(), request(newCA(t), l.hostIDs()...))
	if err == nil || g != nil {
		t.Fatalf("Grant with a stopped target: %+v, %v", g, err)
	}
	if !strings.Contains(err.Error(), stopped.Info().InstanceID) || strings.Contains(err.Error(), l.Hosts[0].Info().InstanceID) {
		t.Errorf("error does not name just the stopped target: %v", err)
	}
	if n := l.Server.Calls()["AmazonSSM.SendCommand"]; n != 0 {
		t.Errorf("%d SendCommand calls; nothing may be sent", n)
	}
	if users := passportUsers(t, l.Hosts[0]); users != "" {
		t.Errorf("the online target has grant records %q", users)
	}
}

// TestFailureMidProvisionLeavesNoUser makes one real host fail after its
// user exists (sudo is asked for, and the host has no visudo), so the undo
// has real work on both hosts.
func TestFailureMidProvisionLeavesNoUser(t *testing.T) {
	l := startLab(t, 2, 0)
	broken := l.Hosts[1]
	onHost(t, broken, "rm -f /usr/sbin/visudo")
	req := request(newCA(t), l.hostIDs()...)
	req.Sudo = true
	g, err := l.svc.Grant(context.Background(), req)
	if err == nil {
		t.Fatal("Grant succeeded on a host without visudo")
	}
	if g != nil {
		t.Errorf("Grant returned %+v, though every host was cleaned", g.Targets)
	}
	msg := err.Error()
	if !strings.Contains(msg, broken.Info().InstanceID) || !strings.Contains(msg, "visudo") || strings.Contains(msg, "PRIVATE KEY") {
		t.Errorf("error does not say which host failed and why, or carries a secret: %v", msg)
	}
	for _, h := range l.Hosts {
		if users := passportUsers(t, h); users != "" {
			t.Errorf("%s keeps grant records %q", h.Info().InstanceID, users)
		}
		if out := onHost(t, h, "getent group passport | cut -d: -f4"); out != "" {
			t.Errorf("%s keeps Passport users %q", h.Info().InstanceID, out)
		}
	}
}

func TestSetTargetsAddsAndRemoves(t *testing.T) {
	l := startLab(t, 2, 0)
	ca := newCA(t)
	h0, h1 := l.Hosts[0], l.Hosts[1]
	id0, id1 := h0.Info().InstanceID, h1.Info().InstanceID
	g := grant(t, l.svc, request(ca, id0))
	c := credentialOf(t, g, nil)

	both, err := l.svc.SetTargets(context.Background(), testActor, g, ca, []string{id0, id1})
	if err != nil {
		t.Fatalf("adding %s: %v", id1, err)
	}
	if len(both.Targets) != 2 || both.Targets[1].InstanceID != id1 || both.Targets[1].Status != Active || both.Serial == g.Serial {
		t.Fatalf("targets after adding: %+v, serial %d (was %d): want a fresh certificate", both.Targets, both.Serial, g.Serial)
	}
	c2 := credentialOf(t, both, nil)
	mustLogIn(t, h1, g.Username, c2.signer)
	mustLogIn(t, h0, g.Username, c.signer) // the first certificate still opens the first host

	unknown := "i-0123456789abcdef0"
	if _, err := l.svc.SetTargets(context.Background(), testActor, both, ca, []string{id0, id1, unknown}); err == nil || !strings.Contains(err.Error(), unknown) {
		t.Errorf("adding an unknown instance: %v; want an error naming it", err)
	}

	only1, err := l.svc.SetTargets(context.Background(), testActor, both, ca, []string{id1})
	if err != nil {
		t.Fatalf("removing %s: %v", id0, err)
	}
	if len(only1.Targets) != 1 || only1.Targets[0].InstanceID != id1 {
		t.Errorf("targets after removing: %+v", only1.Targets)
	}
	if hasUser(t, h0, g.Username) {
		t.Errorf("%s still has the user after it was removed from the targets", id0)
	}
	mustBeRefused(t, h0, g.Username, c.signer, "login on a removed target")
	mustLogIn(t, h1, g.Username, c2.signer)

	// Back on the host it left: that host revoked the earlier serials, so
	// it needs the certificate issued now.
	again, err := l.svc.SetTargets(context.Background(), testActor, only1, ca, []string{id1, id0})
	if err != nil {
		t.Fatalf("adding %s back: %v", id0, err)
	}
	mustLogIn(t, h0, g.Username, credentialOf(t, again, nil).signer)
}

func TestCheckFindsExpiredAndVanished(t *testing.T) {
	l := startLab(t, 2, 0)
	g := grant(t, l.svc, request(newCA(t), l.hostIDs()...))
	health, err := l.svc.Check(context.Background(), g)
	if err != nil || health.Expired || len(health.Missing)+len(health.Unreachable) != 0 {
		t.Fatalf("fresh grant: %+v, %v", health, err)
	}

	// Someone removes the user behind Passport's back.
	onHost(t, l.Hosts[1], "pkill -KILL -u "+g.Username+"; userdel -r "+g.Username)
	health, err = l.svc.Check(context.Background(), g)
	if err != nil || !slices.Equal(health.Missing, []string{l.Hosts[1].Info().InstanceID}) || health.Expired {
		t.Errorf("after userdel on %s: %+v, %v", l.Hosts[1].Info().InstanceID, health, err)
	}

	l.clock.Advance(time.Hour)
	l.Server.ResetCalls()
	health, err = l.svc.Check(context.Background(), g)
	if err != nil || !health.Expired {
		t.Errorf("at the end of the window: %+v, %v", health, err)
	}
	if n := l.Server.Calls()["AmazonSSM.SendCommand"]; n != 0 {
		t.Errorf("checking an expired grant sent %d commands", n)
	}
}

// TestGrantWithEveryKindOfCA: a KMS-backed CA (every signature a kms:Sign
// call to the lab's KMS) and a local RSA CA (rsa-sha2-512, never SHA-1)
// issue certificates that the hosts' sshd and OpenSSH accept.
func TestGrantWithEveryKindOfCA(t *testing.T) {
	l := startLab(t, 1, 0)
	h := l.Hosts[0]
	kmsClient := kms.NewFromConfig(l.AWSConfig())
	kmsCA, err := sshca.CreateKMS(context.Background(), kmsClient, sshca.ECDSAP256, sshca.KMSKeyOptions{Description: "access test"})
	if err != nil {
		t.Fatal(err)
	}
	rsaCA, err := sshca.Generate(sshca.RSA4096)
	if err != nil {
		t.Fatal(err)
	}
	for name, ca := range map[string]*sshca.CA{"kms ecdsa-p256": kmsCA, "local rsa-4096": rsaCA} {
		t.Run(name, func(t *testing.T) {
			before := l.Server.Calls()["TrentService.Sign"]
			g := grant(t, l.svc, request(ca, h.Info().InstanceID))
			if signed := l.Server.Calls()["TrentService.Sign"] - before; (ca == kmsCA) != (signed > 0) {
				t.Errorf("%d kms:Sign calls for a %s CA", signed, name)
			}
			if ca == rsaCA {
				if alg := certificate(t, g).Signature.Format; alg != ssh.KeyAlgoRSASHA512 && alg != ssh.KeyAlgoRSASHA256 {
					t.Errorf("RSA CA signed with %s", alg)
				}
			}
			c := credentialOf(t, g, nil)
			mustLogIn(t, h, g.Username, c.signer)
			if got, err := opensshLogin(t, h, g.Username, c); err != nil || got != g.Username {
				t.Errorf("OpenSSH login: %q, %v", got, err)
			}
		})
	}
}
