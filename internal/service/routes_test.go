package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// These tests drive the routes and answers the other tests of the package
// leave alone, so that every one the API document promises is seen (see
// main_test.go).

func TestAServiceWithoutSignInSaysSo(t *testing.T) {
	r := startRig(t, 0, 0, func(s *Settings) { s.SAMLMetadata, s.Machines = "", false })
	for _, c := range []struct {
		call   call
		status int
		page   bool
	}{
		{call{method: "GET", path: "/saml/metadata"}, 404, false},
		{call{method: "GET", path: "/saml/login"}, 404, true},
		{call{method: "POST", path: "/saml/acs", header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, body: "RelayState=x&SAMLResponse=eA=="}, 404, true},
		{call{method: "GET", path: "/v1/login/cli?" + url.Values{"redirect_uri": {"http://127.0.0.1:9/cb"}, "code_challenge": {strings.Repeat("c", 43)},
			"code_challenge_method": {"S256"}, "state": {strings.Repeat("s", 16)}}.Encode()}, 404, true},
		{call{method: "GET", path: "/v1/login/aws"}, 404, false},
		{call{method: "POST", path: "/v1/login/aws", body: `{}`}, 404, false},
	} {
		a := r.do(t, c.call)
		if a.status != c.status {
			t.Errorf("%s %s: %d %s; want %d", c.call.method, c.call.path, a.status, a.raw, c.status)
		}
		if c.page != strings.Contains(a.raw, "<html") || !c.page && a.code != api.CodeNotFound {
			t.Errorf("%s %s: %s; want it to say that this service has no such sign-in", c.call.method, c.call.path, a.raw)
		}
	}
}

// TestAMachineSignInMustBeWellFormed: what POST /v1/login/aws refuses
// before it asks STS anything.
func TestAMachineSignInMustBeWellFormed(t *testing.T) {
	r := startRig(t, 0, 0, func(s *Settings) { s.Machines = true })
	for _, body := range []string{`{"method":7}`, `[]`, `{"method":"POST","url":"https://sts.amazonaws.com/","headers":{},"body":"","extra":1}`} {
		if a := r.do(t, call{method: "POST", path: "/v1/login/aws", body: body}); a.status != 400 || a.code != api.CodeInvalid {
			t.Errorf("sign-in %s: %d %s; want 400 invalid", body, a.status, a.raw)
		}
	}
	if a := r.do(t, call{method: "POST", path: "/v1/login/aws", body: `{"method":"POST","url":"https://evil.example/","headers":{},"body":""}`}); a.status != 401 {
		t.Errorf("a sign-in signed for another STS: %d %s; want 401", a.status, a.raw)
	}
}

// TestATunnelThroughTheService: a person with no AWS credentials of their
// own reaches sshd on their target through a Session Manager session the
// service opens for them, and only they can resume or end it.
func TestATunnelThroughTheService(t *testing.T) {
	r := startRig(t, 1, 0)
	ctx := context.Background()
	h := r.lab.Hosts[0]
	target := h.Info().InstanceID
	alice := r.signIn(t, "alice")
	bobToken := r.token(t, "bob")
	key := newUserKey(t)
	req, err := alice.Create(ctx, api.CreateRequest{Targets: []string{target}, Reason: "INC-88 look at the logs", PublicKey: key.line}, "")
	if err != nil {
		t.Fatal(err)
	}
	sess, err := alice.StartSession(ctx, req.ID, api.SessionRequest{Target: target, Kind: "ssh"})
	if err != nil {
		t.Fatal(err)
	}
	// Resuming hands out a new way into the same session, as after a
	// dropped websocket.
	again, err := alice.ResumeSession(ctx, sess.SessionID)
	if err != nil || again.SessionID != sess.SessionID || again.Token == "" {
		t.Fatalf("resume: %+v, %v", again, err)
	}
	if got := sshOverSession(t, again, h.SSHAddr(), req.Username, labtest.CertSigner(t, key.signer, req.Certificate), labtest.HostKey(t, h), "id -un"); got != req.Username {
		t.Fatalf("ssh over the service's session ran as %q, want %s", got, req.Username)
	}
	path := "/v1/sessions/" + sess.SessionID
	if a := r.do(t, call{method: "POST", path: path + "/resume", token: bobToken}); a.status != 404 {
		t.Errorf("bob resuming alice's session: %d %s; want 404", a.status, a.raw)
	}
	if a := r.do(t, call{method: "POST", path: path + "/end", token: bobToken}); a.status != 404 {
		t.Errorf("bob ending alice's session: %d %s; want 404", a.status, a.raw)
	}
	if err := alice.EndSession(ctx, sess.SessionID); err != nil {
		t.Fatal(err)
	}
	// A session outlives nothing: once the request ends, none opens or
	// resumes.
	second, err := alice.StartSession(ctx, req.ID, api.SessionRequest{Target: target, Kind: "port", Port: 22})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.End(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.ResumeSession(ctx, second.SessionID); codeOf(err) != api.CodeConflict {
		t.Errorf("resuming a session of an ended request: %v; want conflict", err)
	}
	if _, err := alice.StartSession(ctx, req.ID, api.SessionRequest{Target: target, Kind: "ssh"}); codeOf(err) != api.CodeConflict {
		t.Errorf("a session on an ended request: %v; want conflict", err)
	}
}

// sshOverSession runs command over SSH through a service-opened
// AWS-StartSSHSession session, as passport ssh's ProxyCommand does.
func sshOverSession(t *testing.T, sess api.Session, addr, user string, signer ssh.Signer, hostKey ssh.PublicKey, command string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, end, err := sshThroughSession(ctx, sess, addr, user, signer, hostKey)
	if err != nil {
		t.Fatal(err)
	}
	defer end()
	shell, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer shell.Close()
	out, err := shell.Output(command)
	if err != nil {
		t.Fatalf("%s over the session: %v", command, err)
	}
	return strings.TrimSpace(string(out))
}

// sshThroughSession opens the data channel of sess and logs in over SSH
// through it; end closes both.
func sshThroughSession(ctx context.Context, sess api.Session, addr, user string, signer ssh.Signer, hostKey ssh.PublicKey) (client *ssh.Client, end func(), err error) {
	s, err := ssmsession.Dial(ctx, sess.StreamURL, sess.Token)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the data channel: %w", err)
	}
	stream, err := s.Stream()
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	c, chans, reqs, err := ssh.NewClientConn(streamConn{stream}, addr, &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey), HostKeyAlgorithms: []string{hostKey.Type()}, Timeout: 30 * time.Second,
	})
	if err != nil {
		s.Close()
		return nil, nil, fmt.Errorf("ssh through the session: %w", err)
	}
	client = ssh.NewClient(c, chans, reqs)
	return client, func() { client.Close(); s.Terminate() }, nil
}

// streamConn lets x/crypto/ssh run over a session's stream.
type streamConn struct{ io.ReadWriteCloser }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "ssm" }
func (tunnelAddr) String() string  { return "session-manager" }

func (streamConn) LocalAddr() net.Addr              { return tunnelAddr{} }
func (streamConn) RemoteAddr() net.Addr             { return tunnelAddr{} }
func (streamConn) SetDeadline(time.Time) error      { return nil }
func (streamConn) SetReadDeadline(time.Time) error  { return nil }
func (streamConn) SetWriteDeadline(time.Time) error { return nil }

// TestHostFailuresComeBackWithTheRequest: when hosts fail, each call that
// changed them answers 502 with the request as it now stands, and calls
// on an ended request are conflicts. Model nodes answer as told; the lab's
// policy lets carol (admins) reach them.
func TestHostFailuresComeBackWithTheRequest(t *testing.T) {
	r := startRigWith(t, lab.Options{ModelNodes: 3})
	ctx := context.Background()
	carol := r.signIn(t, "carol")
	m := r.lab.Models
	// Each host program reports its last result line: answer the one
	// the next call runs.
	ok := func(action string) {
		for _, n := range m {
			n.SetAnswer(0, "passport-result action="+action+" status=ok\n", "")
		}
	}
	broken := func() {
		for _, n := range m {
			n.SetAnswer(1, "", "disk full")
		}
	}
	in := api.CreateRequest{Targets: []string{m[0].Info().InstanceID}, Reason: "CHG-9 scale test", PublicKey: newUserKey(t).line}

	broken()
	_, err := carol.Create(ctx, in, "")
	var failed *client.Error
	if codeOf(err) != api.CodeHostFailure || !errors.As(err, &failed) || failed.Request == nil || failed.Request.State != "revoking" {
		t.Fatalf("a create whose host fails: %v; want host_failure with the request, still revoking where the undo failed", err)
	}

	ok("provision")
	req, err := carol.Create(ctx, in, "")
	if err != nil {
		t.Fatal(err)
	}
	two := []string{m[0].Info().InstanceID, m[1].Info().InstanceID}
	if got, err := carol.SetTargets(ctx, req.ID, two, ""); err != nil || len(got.Targets) != 2 {
		t.Fatalf("adding a target: %+v, %v", got, err)
	}
	ok("extend")
	if _, err := carol.Extend(ctx, req.ID, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Check(ctx, req.ID); err != nil {
		t.Fatal(err)
	}

	broken()
	// In this order: an end that fails leaves the request revoking.
	for _, c := range []struct {
		name string
		call func() error
	}{
		{"extend", func() error { _, err := carol.Extend(ctx, req.ID, 3*time.Hour); return err }},
		{"adding a host", func() error {
			_, err := carol.SetTargets(ctx, req.ID, append(two, m[2].Info().InstanceID), "")
			return err
		}},
		{"end", func() error { _, err := carol.End(ctx, req.ID); return err }},
	} {
		if err := c.call(); codeOf(err) != api.CodeHostFailure || !errors.As(err, &failed) || failed.Request == nil {
			t.Errorf("%s on failing hosts: %v; want host_failure with the request", c.name, err)
		}
	}

	ok("revoke")
	if ended, err := carol.End(ctx, req.ID); err != nil || ended.State != "revoked" {
		t.Fatalf("ending once the hosts answer: %+v, %v", ended, err)
	}
	if _, err := carol.Extend(ctx, req.ID, time.Hour); codeOf(err) != api.CodeConflict {
		t.Errorf("extending an ended request: %v; want conflict", err)
	}
	if _, err := carol.SetTargets(ctx, req.ID, two, ""); codeOf(err) != api.CodeConflict {
		t.Errorf("changing an ended request's targets: %v; want conflict", err)
	}

	// Systems Manager out of reach: the caller is told to try again.
	r.lab.Server.Deny(r.lab.Service.AccessKeyID, "ssm:DescribeInstanceInformation")
	if _, err := carol.Targets(ctx, client.TargetFilter{}); codeOf(err) != api.CodeUnavailable {
		t.Errorf("listing targets without Systems Manager: %v; want unavailable", err)
	}
}

// TestEveryChangeRefusesACrossSiteCookie: a browser made to post from
// another site with the person's cookie changes nothing, on every route
// that changes something (the ACS alone takes cross-site posts).
func TestEveryChangeRefusesACrossSiteCookie(t *testing.T) {
	r := startRig(t, 0, 0)
	alice := r.token(t, "alice")
	for _, route := range r.svc.Server.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if method == "GET" || path == api.PathSAMLACS {
			continue
		}
		path = strings.NewReplacer("{id}", "ar-0123456789abcdef", "{sid}", "s-0123").Replace(path)
		a := r.do(t, call{method: method, path: path, body: `{}`, header: map[string]string{
			"Cookie": "passport_session=" + alice, "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}})
		if a.status != 403 || a.code != api.CodeDenied {
			t.Errorf("%s from another site: %d %s; want 403 denied", route, a.status, a.raw)
		}
	}
	// Not a cross-site call: the same with no cookie is the route's own
	// answer, so the refusal above is the protection's.
	if a := r.do(t, call{method: "POST", path: "/v1/logout", token: alice}); a.status != 204 {
		t.Errorf("logout from the CLI: %d %s", a.status, a.raw)
	}
}
