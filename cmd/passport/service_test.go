package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/service"
	"github.com/passport-access/terraform-provider-passport/internal/service/servicetest"
)

// These tests run the CLI against the Passport service as people and
// machines use it: the service on a lab with its own AWS identity, people
// signing in with a real browser, the lab's requester identity (no AWS
// permission on the access path) asking for access, and OpenSSH logging
// in through the service's Session Manager sessions.

type serviceLab struct {
	*lab.Lab
	svc       *servicetest.Service
	configDir string
}

// startServiceLab starts a lab with opts' hosts and the service on it, and
// points this test's passport processes at the lab's AWS endpoints (as
// its operator) with a fresh config directory and nobody signed in.
func startServiceLab(t *testing.T, opts lab.Options, change ...func(*service.Settings)) *serviceLab {
	t.Helper()
	if opts.Hosts > 0 {
		for _, tool := range []string{"ssh", "ssh-keygen"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s is not installed: these tests run OpenSSH's client", tool)
			}
		}
	}
	l := labtest.Start(t, opts)
	for _, kv := range l.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	sl := &serviceLab{Lab: l, svc: servicetest.Start(t, l, change...), configDir: t.TempDir()}
	t.Setenv("PASSPORT_CONFIG_DIR", sl.configDir)
	for _, k := range []string{client.EnvServer, client.EnvServerCA, "PASSPORT_TOKEN", "PASSPORT_CA"} {
		t.Setenv(k, "")
	}
	return sl
}

// asRequester makes this test's AWS credentials the lab requester's: a
// machine that may call nothing on the access path itself.
func (sl *serviceLab) asRequester(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", sl.Requester.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", sl.Requester.SecretAccessKey)
}

// newSSHKey makes a person's own key pair with ssh-keygen, as they would,
// and returns the public key's file.
func newSSHKey(t *testing.T) string {
	t.Helper()
	priv := filepath.Join(t.TempDir(), "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "person@laptop", "-f", priv).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	return priv + ".pub"
}

var reRequestID = regexp.MustCompile(`Access request (ar-[0-9a-f]{16}) granted`)

// createdID is the request id create printed.
func createdID(t *testing.T, stdout string) string {
	t.Helper()
	m := reRequestID.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("request create printed no request id:\n%s", stdout)
	}
	return m[1]
}

// A person signs in to the service in Chromium, asks for access with
// their own key, logs in with OpenSSH through the service's sessions, and
// signs out; the token they had is dead at the service afterwards.
func TestAPersonThroughTheService(t *testing.T) {
	b := chromiumBrowser(t)
	sl := startServiceLab(t, lab.Options{Hosts: 1})
	host := sl.Hosts[0]
	server := sl.svc.URL

	out, page, err := runLogin(t, b, []string{"--server", server}, "alice", "alice-lab")
	if err != nil {
		t.Fatalf("login --server: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Signed in to "+server+" as alice (groups: ops) until") {
		t.Errorf("login said:\n%s", out)
	}
	if !strings.Contains(page, "Signed in to Passport as alice") {
		t.Errorf("the browser was shown %q", page)
	}
	path, err := client.TokenPath(server)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 || !strings.HasPrefix(path, sl.configDir) {
		t.Fatalf("token file %s: %v, mode %v; want 0600 in the config directory", path, err, info.Mode())
	}
	kept, err := client.LoadToken(server, info.ModTime())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, kept.Token) || strings.Contains(page, kept.Token) {
		t.Error("the token was printed or shown in the browser")
	}

	// PASSPORT_SERVER stands for --server.
	t.Setenv(client.EnvServer, server)
	who, stderr, err := passportRun(t, "whoami")
	if err != nil || !regexp.MustCompile(`server:  `+regexp.QuoteMeta(server)+`\nsubject: alice\nkind:    person\ngroups:  ops\nexpires: `).MatchString(who) {
		t.Errorf("whoami with PASSPORT_SERVER: %v\n%s%s", err, who, stderr)
	}

	pub := newSSHKey(t)
	stdout, stderr, err := passportRun(t, "request", "create", "--target", host.Info().InstanceID, "--reason", "INC-4242 disk full on web-1", "--duration", "2h", "--public-key", pub)
	if err != nil {
		t.Fatalf("request create: %v\n%s%s", err, stdout, stderr)
	}
	id := createdID(t, stdout)
	if !strings.Contains(stdout, "granted to alice") || !strings.Contains(stdout, "Connect with: passport ssh "+host.Info().ComputerName) {
		t.Errorf("request create printed:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(sl.configDir, "requests", id, "key")); !os.IsNotExist(err) {
		t.Errorf("a private key was kept for a request made for the person's own key: %v", err)
	}
	// Their own key is used without -i: it lay beside the public key.
	stdout, stderr, err = passportRun(t, "ssh", host.Info().ComputerName, "--", "id", "-un")
	if err != nil {
		t.Fatalf("passport ssh through the service: %v\n%s", err, stderr)
	}
	user := strings.TrimSpace(stdout)
	if !strings.HasPrefix(user, "pp-") {
		t.Errorf("passport ssh ran as %q, want the request's pp- user", user)
	}

	// The session was the service's: its audit trail shows the connection.
	c, err := client.New(server, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	events, err := c.WithToken(kept.Token).Audit(context.Background(), client.AuditFilter{Request: id})
	if err != nil || !slices.ContainsFunc(events, func(e api.Event) bool { return e.Action == "connected" && e.Actor == "alice" }) {
		t.Errorf("the service's audit trail of %s holds no connection by alice: %v %+v", id, err, events)
	}

	stdout, _, err = passportRun(t, "request", "list")
	if err != nil || !regexp.MustCompile(id+`\s+alice\s+`+user+`\s+active\s+\S+\s+\d+(h\d*m?|m)\s+yes\s+`+host.Info().InstanceID+`=active`).MatchString(stdout) {
		t.Errorf("request list through the service: %v\n%s", err, stdout)
	}

	if stdout, stderr, err := passportRun(t, "logout"); err != nil || stdout != "Signed out of "+server+".\n" {
		t.Errorf("logout: %v %q %q", err, stdout, stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the token file is still there after logout: %v", err)
	}
	if _, err := c.WithToken(kept.Token).WhoAmI(context.Background()); client.CodeOf(err) != api.CodeUnauthenticated {
		t.Errorf("the signed-out token still works at the service: %v", err)
	}
	// With AWS credentials at hand, the CLI would act as their machine;
	// without, it says how to sign in.
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for _, args := range [][]string{{"whoami"}, {"request", "list"}, {"request", "end", id}} {
		_, stderr, err := passportRun(t, args...)
		if err == nil || !strings.Contains(stderr, "run passport login --server "+server) {
			t.Errorf("passport %s after logout: %v %q; want it to say to run passport login --server", strings.Join(args, " "), err, stderr)
		}
	}

	// A token the service no longer knows (revoked elsewhere, or lost
	// with a replica's ledger) is answered the same way.
	if err := client.SaveToken(server, api.Token{Token: "ppt_" + strings.Repeat("A", 43), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := passportRun(t, "request", "list"); err == nil || !strings.Contains(stderr, "no longer accepts your sign-in") || !strings.Contains(stderr, "run passport login --server "+server) {
		t.Errorf("request list with a token the service does not know: %v %q", err, stderr)
	}
}

// The lab's requester identity, a machine that may call nothing on the
// access path, is refused going around the service, and through it gets
// access, logs in with OpenSSH over the service's Session Manager
// sessions (it holds no ssm:StartSession), tunnels a port, extends, and
// ends; a repeated create with the same idempotency key grants once.
func TestTheRequesterThroughTheService(t *testing.T) {
	sl := startServiceLab(t, lab.Options{Hosts: 1})
	host := sl.Hosts[0]
	id0 := host.Info().InstanceID
	server := sl.svc.URL
	sl.asRequester(t)

	_, stderr, err := passportRun(t, "request", "create", "--target", id0, "--reason", "nightly deploy check", "--ca", "kms:"+sl.svc.CA.KMSKeyID())
	if err == nil || !strings.Contains(stderr, "AccessDenied") {
		t.Fatalf("direct mode as the requester: %v %q; want AWS's AccessDenied", err, stderr)
	}

	t.Setenv(client.EnvServer, server)
	who, stderr, err := passportRun(t, "whoami")
	if err != nil || !strings.Contains(who, "subject: arn:aws:iam::123456789012:user/requester\nkind:    machine\n") || !strings.Contains(stderr, "acting as the machine arn:aws:iam::123456789012:user/requester") {
		t.Fatalf("whoami as the requester machine: %v\n%s%s", err, who, stderr)
	}

	create := []string{"request", "create", "--target", id0, "--reason", "nightly deploy check", "--idempotency-key", "job-42"}
	stdout, stderr, err := passportRun(t, create...)
	if err != nil {
		t.Fatalf("request create through the service: %v\n%s%s", err, stdout, stderr)
	}
	id := createdID(t, stdout)
	if !strings.Contains(stdout, "granted to arn:aws:iam::123456789012:user/requester") {
		t.Errorf("request create printed:\n%s", stdout)
	}
	key := filepath.Join(sl.configDir, "requests", id, "key")
	if info, err := os.Stat(key); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("the key pair made for the request: %v, mode %v; want 0600", err, info.Mode())
	}
	stdout, stderr, err = passportRun(t, create...)
	if err != nil || !strings.Contains(stdout, "Access request "+id+" was made by an earlier call with this idempotency key") {
		t.Errorf("the same create again: %v\n%s%s; want the first request found", err, stdout, stderr)
	}
	stdout, _, err = passportRun(t, "request", "list", "--state", "active")
	if err != nil || strings.Count(stdout, "ar-") != 1 {
		t.Errorf("after two creates with one idempotency key, the service lists:\n%s%v\nwant one request", stdout, err)
	}

	stdout, stderr, err = passportRun(t, "ssh", id0, "--", "id", "-un")
	if err != nil {
		t.Fatalf("passport ssh through the service as the requester: %v\n%s", err, stderr)
	}
	user := strings.TrimSpace(stdout)
	cfg := filepath.Join(t.TempDir(), "ssh_config")
	if stdout, stderr, err := passportRun(t, "ssh-config", "-o", cfg); err != nil {
		t.Fatalf("ssh-config: %v\n%s%s", err, stdout, stderr)
	}
	if got := strings.TrimSpace(openssh(t, "ssh", "-F", cfg, host.Info().ComputerName, "id -un")); got != user {
		t.Errorf("ssh -F with passport ssh-config ran as %q, want %s", got, user)
	}

	t.Run("tunnel", func(t *testing.T) {
		port := echoServer(t, host.Info().IPAddress)
		cmd, stdout, stderr := passport(t, "tunnel", id0, "--remote-port", port)
		addr := waitFor(t, stdout, stderr, regexp.MustCompile(`Forwarding (127\.0\.0\.1:\d+) to`))
		for range 3 {
			if err := echo(addr); err != nil {
				t.Error(err)
			}
		}
		before := sl.Server.Calls()["AmazonSSM.TerminateSession"]
		interrupt(t, cmd, stderr)
		if n := sl.Server.Calls()["AmazonSSM.TerminateSession"]; n != before+1 {
			t.Errorf("Ctrl-C made %d TerminateSession calls, want 1 (by the service)", n-before)
		}
	})

	cert := filepath.Join(sl.configDir, "requests", id, "key-cert.pub")
	before, _ := os.ReadFile(cert)
	stdout, stderr, err = passportRun(t, "request", "extend", id, "90m")
	if err != nil || !strings.Contains(stdout, "Access request "+id+" now ends") {
		t.Fatalf("request extend: %v\n%s%s", err, stdout, stderr)
	}
	if after, _ := os.ReadFile(cert); string(after) == string(before) {
		t.Error("extend kept the old certificate")
	}
	if stdout, stderr, err := passportRun(t, "ssh", id0, "--", "true"); err != nil {
		t.Errorf("passport ssh after extend: %v\n%s%s", err, stdout, stderr)
	}
	if _, stderr, err := passportRun(t, "request", "extend", id, "3h"); err == nil || !strings.Contains(stderr, "denied by the Passport service:") {
		t.Errorf("extending past the policy's 2 hours: %v %q; want the service's denial", err, stderr)
	}

	signer := heldSigner(t, key, cert)
	stdout, stderr, err = passportRun(t, "request", "end", id)
	if err != nil || !strings.Contains(stdout, "Access request "+id+" is revoked.") {
		t.Fatalf("request end: %v\n%s%s", err, stdout, stderr)
	}
	labtest.MustBeRefused(t, host, user, signer, "after passport request end")
	if _, err := os.Stat(filepath.Join(sl.configDir, "requests", id)); !os.IsNotExist(err) {
		t.Errorf("the ended request is still held: %v", err)
	}
}

// heldSigner is the key and certificate the store holds for a request.
func heldSigner(t *testing.T, key, cert string) ssh.Signer {
	t.Helper()
	pem, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile(cert)
	if err != nil {
		t.Fatal(err)
	}
	return labtest.CertSigner(t, s, string(c))
}

// Through the service, a Windows target's password is sealed by the host
// to a key passport request create made, opened here, and printed by
// passport rdp, whose tunnel is the service's session; the password logs
// on through it.
func TestRDPThroughTheService(t *testing.T) {
	sl := startServiceLab(t, lab.Options{WindowsHosts: 1})
	win := sl.Windows[0]
	id0 := win.Info().InstanceID
	sl.asRequester(t)
	t.Setenv(client.EnvServer, sl.svc.URL)

	stdout, stderr, err := passportRun(t, "request", "create", "--tag", "Env=staging", "--reason", "nightly print server check")
	if err != nil {
		t.Fatalf("request create by tag: %v\n%s%s", err, stdout, stderr)
	}
	id := createdID(t, stdout)
	if !strings.Contains(stdout, "Connect with: passport rdp") || strings.Contains(stderr, "warning") {
		t.Errorf("request create printed:\n%s%s", stdout, stderr)
	}
	// A stopped host is named as offline, through the service too.
	if err := win.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := passportRun(t, "rdp", id0); err == nil || !strings.Contains(stderr, id0+" is offline") {
		t.Errorf("passport rdp to a stopped host: %v %q; want it named as offline", err, stderr)
	}
	if err := win.Start(); err != nil {
		t.Fatal(err)
	}
	cmd, out, errOut := passport(t, "rdp", id0)
	printed := rdpPrinted(t, out, errOut)
	if printed["Password"] == "" || strings.HasPrefix(printed["Password"], "none") {
		t.Fatalf("passport rdp printed\n%s\nwithout the target's password", out)
	}
	if res, err := logonCheck(printed["Host"]+":"+printed["Port"], printed["User"], printed["Password"]); err != nil || !strings.Contains(res, "logon of "+printed["User"]+" accepted") {
		t.Errorf("logon-check through the service's tunnel with the printed password: %v\n%s", err, res)
	}
	interrupt(t, cmd, errOut)

	if stdout, stderr, err := passportRun(t, "request", "end", id); err != nil || !strings.Contains(stdout, "is revoked") {
		t.Errorf("request end: %v\n%s%s", err, stdout, stderr)
	}
}

// Without a server, request create, extend, list and end run the access
// core here with the person's own AWS credentials (the lab's operator),
// and passport ssh uses the request with no import step.
func TestRequestsInDirectMode(t *testing.T) {
	sl := startServiceLab(t, lab.Options{Hosts: 1})
	host := sl.Hosts[0]
	id0 := host.Info().InstanceID
	ca := "kms:" + sl.svc.CA.KMSKeyID()

	if _, stderr, err := passportRun(t, "request", "create", "--target", id0, "--reason", "check the direct path"); err == nil || !strings.Contains(stderr, "--ca is required in direct mode") {
		t.Errorf("direct create without --ca: %v %q", err, stderr)
	}
	t.Setenv("PASSPORT_CA", ca)
	stdout, stderr, err := passportRun(t, "request", "create", "--target", id0, "--reason", "check the direct path", "--sudo")
	if err != nil {
		t.Fatalf("direct request create: %v\n%s%s", err, stdout, stderr)
	}
	id := createdID(t, stdout)
	if !strings.Contains(stdout, "granted to "+lab.OperatorARN) {
		t.Errorf("direct create printed:\n%s", stdout)
	}
	stdout, stderr, err = passportRun(t, "ssh", host.Info().ComputerName, "--", "sudo", "-n", "id", "-un")
	if err != nil || strings.TrimSpace(stdout) != "root" {
		t.Fatalf("passport ssh with sudo after a direct create: %v %q\n%s", err, stdout, stderr)
	}
	if stdout, stderr, err := passportRun(t, "request", "extend", id, "2h"); err != nil || !strings.Contains(stdout, "now ends") {
		t.Errorf("direct extend: %v\n%s%s", err, stdout, stderr)
	}
	stdout, _, err = passportRun(t, "request", "list", "--all")
	if err != nil || !regexp.MustCompile(id+`\s+`+regexp.QuoteMeta(lab.OperatorARN)+`\s+\S+\s+active\s+\S+\s+\d+(h\d*m?|m)\s+yes`).MatchString(stdout) {
		t.Errorf("direct list --all: %v\n%s", err, stdout)
	}
	stdout, stderr, err = passportRun(t, "request", "end", id)
	if err != nil || !strings.Contains(stdout, "is revoked") {
		t.Fatalf("direct end: %v\n%s%s", err, stdout, stderr)
	}
	stdout, _, err = passportRun(t, "request", "list", "--state", "revoked")
	if err != nil || !strings.Contains(stdout, id) {
		t.Errorf("direct list --state revoked: %v\n%s", err, stdout)
	}
}

// Through the service, a session whose websocket is recycled (every
// second here, every hour on AWS) resumes with the service's
// ResumeSession, and passport ssh loses nothing.
func TestServiceSessionsSurviveRecycledWebsockets(t *testing.T) {
	sl := startServiceLab(t, lab.Options{Hosts: 1, WebsocketLifetime: time.Second})
	host := sl.Hosts[0].Info()
	sl.asRequester(t)
	t.Setenv(client.EnvServer, sl.svc.URL)
	if stdout, stderr, err := passportRun(t, "request", "create", "--target", host.InstanceID, "--reason", "nightly deploy check"); err != nil {
		t.Fatalf("request create: %v\n%s%s", err, stdout, stderr)
	}
	sshAcrossRecycles(t, host.InstanceID, func() int { return sl.Server.Calls()["AmazonSSM.ResumeSession"] })
}
