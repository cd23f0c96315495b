package service

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/lab/winhost"
)

// The lab's policy (internal/lab/policy.cedar) lets alice (ops) reach
// staging hosts at once for up to 2 hours with a ticket in the reason
// (4 with approval); bob (dev)
// staging for an hour without sudo; carol (admins) everything, and lets
// admins see and end anyone's requests. web-1 is staging, web-2
// production.

func TestAPersonGetsAccessThroughTheService(t *testing.T) {
	r := startRig(t, 1, 0)
	ctx := context.Background()
	h := r.lab.Hosts[0]
	alice := r.signIn(t, "alice")
	me, err := alice.WhoAmI(ctx)
	if err != nil || me.Name != "alice" || me.Kind != "person" || !slices.Equal(me.Groups, []string{"ops"}) {
		t.Fatalf("whoami: %+v, %v; want alice, a person in ops", me, err)
	}

	found, err := alice.Targets(ctx, client.TargetFilter{Tags: map[string]string{"Env": "staging"}, PingStatus: "Online"})
	if err != nil || len(found) != 1 || found[0].InstanceID != h.Info().InstanceID || found[0].Platform != "Linux" {
		t.Fatalf("the staging targets: %+v, %v; want web-1", found, err)
	}
	key := newUserKey(t)
	req, err := alice.Create(ctx, api.CreateRequest{Targets: []string{h.Info().InstanceID}, Reason: "INC-4242 disk alert on web-1", Duration: "1h", PublicKey: key.line}, "")
	if err != nil {
		t.Fatal(err)
	}
	if req.State != "active" || req.Requester != "alice" || req.Duration != "1h" || len(req.Targets) != 1 || req.Targets[0].Status != "active" || req.CertificateAuthority != "lab" {
		t.Fatalf("created %+v", req)
	}
	cert := labtest.CertSigner(t, key.signer, req.Certificate)
	labtest.MustLogIn(t, h, req.Username, cert)

	got, err := alice.Get(ctx, req.ID)
	if err != nil || got.Username != req.Username || got.Certificate != req.Certificate {
		t.Fatalf("get: %+v, %v", got, err)
	}
	mine, err := alice.List(ctx, client.ListOptions{})
	if err != nil || len(mine) != 1 || mine[0].ID != req.ID {
		t.Fatalf("list: %d requests, %v; want hers", len(mine), err)
	}

	longer, err := alice.Extend(ctx, req.ID, 2*time.Hour)
	if err != nil || !longer.ExpiresAt.Equal(req.IssuedAt.Add(2*time.Hour)) || longer.Certificate == req.Certificate {
		t.Fatalf("extend: %+v, %v; want a new certificate until issued_at+2h", longer, err)
	}
	labtest.MustLogIn(t, h, req.Username, labtest.CertSigner(t, key.signer, longer.Certificate))

	ended, err := alice.End(ctx, req.ID)
	if err != nil || ended.State != "revoked" {
		t.Fatalf("end: %+v, %v; want revoked", ended, err)
	}
	labtest.MustBeRefused(t, h, req.Username, cert, "after the request ended")

	events, err := alice.Audit(ctx, client.AuditFilter{Request: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, e := range events {
		trail = append(trail, e.Actor+" "+e.Action)
		if strings.Contains(e.Detail, "PRIVATE KEY") {
			t.Errorf("a private key in the audit trail: %s", e.Detail)
		}
	}
	want := []string{"alice requested", "alice provisioned", "alice extended", "alice revoked"}
	if !slices.Equal(trail, want) {
		t.Errorf("audit trail %q, want %q", trail, want)
	}
	v, err := alice.Verify(ctx)
	if err != nil || !v.OK || v.Events < int64(len(want)) {
		t.Errorf("verify: %+v, %v", v, err)
	}
	if err := alice.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.WhoAmI(ctx); codeOf(err) != api.CodeUnauthenticated {
		t.Errorf("a signed-out token still works: %v", err)
	}
}

func TestWindowsPasswordsReachOnlyTheRequester(t *testing.T) {
	r := startRig(t, 0, 1)
	ctx := context.Background()
	h := r.lab.Windows[0]
	alice := r.signIn(t, "alice")
	seal, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&seal.PublicKey)
	in := api.CreateRequest{Targets: []string{h.Info().InstanceID}, Reason: "CHG-12 patch the print server", PublicKey: newUserKey(t).line}
	if _, err := alice.Create(ctx, in, ""); codeOf(err) != api.CodeInvalid || !strings.Contains(err.Error(), "password_key") {
		t.Fatalf("a Windows target without a password key: %v; want a refusal naming password_key", err)
	}
	in.PasswordKey = base64.StdEncoding.EncodeToString(der)
	req, err := alice.Create(ctx, in, "")
	if err != nil {
		t.Fatal(err)
	}
	sealed := req.SealedPasswords[h.Info().InstanceID]
	if sealed == "" || req.Targets[0].Platform != "Windows" {
		t.Fatalf("created %+v; want a sealed password for the Windows target", req)
	}
	pw, err := hostscript.OpenSealedPassword(seal, req.Username, sealed)
	if err != nil {
		t.Fatal(err)
	}
	logon := func() error {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return winhost.Logon(ctx, net.JoinHostPort(h.Info().IPAddress, strconv.Itoa(winhost.RDPPort)), req.Username, pw)
	}
	if err := logon(); err != nil {
		t.Fatalf("the opened password does not log on: %v", err)
	}
	// The service keeps no password: a read has none, and neither has the
	// ledger.
	got, err := alice.Get(ctx, req.ID)
	if err != nil || len(got.SealedPasswords) != 0 {
		t.Errorf("a read carries passwords: %+v, %v", got.SealedPasswords, err)
	}
	if _, err := alice.End(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if err := logon(); err == nil {
		t.Error("the password still logs on after the request ended")
	}
}

func TestARetriedCreateGrantsOnce(t *testing.T) {
	r := startRig(t, 1, 0)
	ctx := context.Background()
	h := r.lab.Hosts[0]
	alice := r.signIn(t, "alice")
	in := api.CreateRequest{Targets: []string{h.Info().InstanceID}, Reason: "INC-31 retried over a flaky link", PublicKey: newUserKey(t).line}
	first, err := alice.Create(ctx, in, "apply-7f3a")
	if err != nil {
		t.Fatal(err)
	}
	again, err := alice.Create(ctx, in, "apply-7f3a")
	if err != nil || again.ID != first.ID || again.Username != first.Username {
		t.Fatalf("the retry made %+v, %v; want request %s again", again, err, first.ID)
	}
	// The key is alice's: bob's same key is another request.
	other, err := r.signIn(t, "carol").Create(ctx, in, "apply-7f3a")
	if err != nil || other.ID == first.ID {
		t.Fatalf("carol's call with alice's key: %+v, %v; want a request of her own", other, err)
	}
	if users := labtest.OnHost(t, h, "getent group passport | cut -d: -f4"); strings.Count(users, "pp-") != 2 {
		t.Errorf("passport users on the host: %q, want alice's and carol's only", users)
	}
}

// TestAMachineWithNoAWSPermissionGetsAccessOnlyThroughTheService: the lab's
// requester identity may call nothing on the access path. Going around the
// service it is refused; through it, signed in with its AWS identity, it
// gets what policy gives machines.
func TestAMachineWithNoAWSPermissionGetsAccessOnlyThroughTheService(t *testing.T) {
	r := startRig(t, 1, 0, func(s *Settings) { s.Machines = true })
	ctx := context.Background()
	h := r.lab.Hosts[0]
	requester := r.lab.AWSConfig()
	requester.Credentials = credentials.NewStaticCredentialsProvider(r.lab.Requester.AccessKeyID, r.lab.Requester.SecretAccessKey, "")

	// Around the service: no SendCommand, no Sign, no policy.
	ssmc := ssm.NewFromConfig(requester)
	_, err := ssmc.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{h.Info().InstanceID},
		Parameters: map[string][]string{"commands": {"useradd mallory"}}})
	var denied interface{ ErrorCode() string }
	if !errors.As(err, &denied) || !strings.Contains(denied.ErrorCode(), "AccessDenied") {
		t.Fatalf("the requester's own SendCommand: %v; want AccessDenied", err)
	}
	if _, err := ssmc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(lab.PolicyParameter)}); !errors.As(err, &denied) {
		t.Fatalf("the requester reading the policy: %v; want AccessDenied", err)
	}

	// Through it.
	anon := r.anonymous(t)
	info, err := anon.AWSLoginInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	login, err := awsidentity.Sign(ctx, requester, info)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := anon.AWSLogin(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Principal.Kind != "machine" || tok.Principal.Name != r.lab.Requester.ARN {
		t.Fatalf("signed in as %+v, want the machine %s", tok.Principal, r.lab.Requester.ARN)
	}
	if _, err := anon.AWSLogin(ctx, login); codeOf(err) != api.CodeUnauthenticated {
		t.Errorf("the same signed sign-in again: %v; want it refused", err)
	}
	ci := anon.WithToken(tok.Token)
	key := newUserKey(t)
	req, err := ci.Create(ctx, api.CreateRequest{Targets: []string{h.Info().InstanceID}, Reason: "CI deploy of build 1234", PublicKey: key.line}, "")
	if err != nil {
		t.Fatal(err)
	}
	labtest.MustLogIn(t, h, req.Username, labtest.CertSigner(t, key.signer, req.Certificate))
	if req.RequesterKind != "machine" {
		t.Errorf("requester kind %q, want machine", req.RequesterKind)
	}
	// Policy gives machines staging only, for two hours.
	if _, err := ci.Create(ctx, api.CreateRequest{Targets: []string{h.Info().InstanceID}, Reason: "CI deploy of build 1234", Duration: "3h", PublicKey: key.line}, ""); codeOf(err) != api.CodeDenied {
		t.Errorf("three hours for the machine: %v; want denied", err)
	}
	if _, err := ci.End(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyDecidesWhoSeesAndEndsOthersRequests: a requester always sees
// and ends their own; others as policy's view and end say, and one who
// may end but not view ends without learning anything else.
func TestPolicyDecidesWhoSeesAndEndsOthersRequests(t *testing.T) {
	r := startRigWith(t, lab.Options{Hosts: 1, Policy: `
permit (principal in Passport::Group::"ops", action == Passport::Action::"access", resource);
permit (principal in Passport::Group::"dev", action == Passport::Action::"end", resource)
when { resource.hasTag("Env") && resource.getTag("Env") == "staging" };
`})
	ctx := context.Background()
	h := r.lab.Hosts[0]
	key := newUserKey(t)
	alice, bob, carol := r.signIn(t, "alice"), r.signIn(t, "bob"), r.signIn(t, "carol")
	in := api.CreateRequest{Targets: []string{h.Info().InstanceID}, Reason: "INC-9 the disk again", PublicKey: key.line}
	first, err := alice.Create(ctx, in, "")
	if err != nil {
		t.Fatal(err)
	}
	// carol is an admin in the lab's policy, but this policy gives admins
	// nothing over others' requests.
	if _, err := carol.Get(ctx, first.ID); codeOf(err) != api.CodeNotFound {
		t.Errorf("carol reading alice's request: %v; want not_found", err)
	}
	if _, err := carol.End(ctx, first.ID); codeOf(err) != api.CodeNotFound {
		t.Errorf("carol ending alice's request: %v; want not_found", err)
	}
	// bob (dev) may end staging requests without seeing them.
	if _, err := bob.Get(ctx, first.ID); codeOf(err) != api.CodeNotFound {
		t.Errorf("bob reading alice's request: %v; want not_found", err)
	}
	if others, err := bob.List(ctx, client.ListOptions{All: true}); err != nil || len(others) != 0 {
		t.Errorf("bob listing everyone's: %d, %v; want none", len(others), err)
	}
	if own, err := alice.Get(ctx, first.ID); err != nil || !own.CallerMayEnd || own.CallerMayDecide {
		t.Errorf("alice reads her own active request: %+v, %v; want hers to end, nothing to decide", own, err)
	}
	if ended, err := bob.End(ctx, first.ID); err != nil || ended.State != "revoked" {
		t.Fatalf("bob ending alice's request: %+v, %v", ended, err)
	}
	if own, err := alice.Get(ctx, first.ID); err != nil || own.CallerMayEnd {
		t.Errorf("alice reads her ended request: %+v, %v; want nothing left to end", own, err)
	}
	labtest.MustBeRefused(t, h, first.Username, labtest.CertSigner(t, key.signer, first.Certificate), "after bob ended it")

	// The newest few of the trail are the newest the caller may see:
	// alice's own, the last of them; none of hers for carol.
	all, err := alice.Audit(ctx, client.AuditFilter{})
	if err != nil || len(all) < 3 {
		t.Fatalf("alice's trail: %d events, %v", len(all), err)
	}
	if last, err := alice.AuditList(ctx, client.AuditFilter{Newest: 2}); err != nil || !last.Truncated || len(last.Events) != 2 ||
		last.Events[0].Seq != all[len(all)-2].Seq || last.Events[1].Seq != all[len(all)-1].Seq {
		t.Errorf("alice's newest 2 events: %+v, %v; want the last 2 of %d, truncated", last, err, len(all))
	}
	if every, err := alice.AuditList(ctx, client.AuditFilter{Newest: len(all)}); err != nil || every.Truncated || len(every.Events) != len(all) {
		t.Errorf("alice's newest %d events: %d, truncated %v, %v; want all, not truncated", len(all), len(every.Events), every.Truncated, err)
	}
	if theirs, err := carol.AuditList(ctx, client.AuditFilter{Newest: 5}); err != nil || theirs.Truncated || len(theirs.Events) != 0 {
		t.Errorf("carol's newest 5 events: %+v, %v; want none of alice's", theirs, err)
	}
	var e *api.Error
	if _, err := alice.AuditList(ctx, client.AuditFilter{Newest: 10001}); codeOf(err) != api.CodeInvalid || !errors.As(err, &e) || e.Field != "newest" {
		t.Errorf("newest=10001: %v; want invalid on newest", err)
	}
}

// syncBuffer is a log sink the service writes from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNoSecretReachesTheLog: the service logs every call, and never a
// token, a login code, a certificate's key or a sealed password.
func TestNoSecretReachesTheLog(t *testing.T) {
	var log syncBuffer
	r := startRig(t, 1, 0, func(s *Settings) {
		s.Log = slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	ctx := context.Background()
	code, verifier := r.loginCode(t, "alice")
	tok, err := r.anonymous(t).ExchangeCode(ctx, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	alice := r.anonymous(t).WithToken(tok.Token)
	key := newUserKey(t)
	req, err := alice.Create(ctx, api.CreateRequest{Targets: []string{r.lab.Hosts[0].Info().InstanceID}, Reason: "INC-5 logs must not leak", PublicKey: key.line}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.End(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	r.anonymous(t).WithToken(tok.Token + "x").WhoAmI(ctx)
	alice.Logout(ctx)
	got := log.String()
	if !strings.Contains(got, `"path":"/v1/requests"`) || !strings.Contains(got, `"caller":"alice"`) {
		t.Fatalf("the log does not record the calls and their caller:\n%s", got)
	}
	for name, secret := range map[string]string{"the token": tok.Token, "the login code": code, "the verifier": verifier, "the certificate": req.Certificate, "the token's body": strings.TrimPrefix(tok.Token, "ppt_")} {
		if strings.Contains(got, secret) {
			t.Errorf("%s is in the log", name)
		}
	}
}
