package access

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// These tests run the core against the lab: the real SSM client and fleet,
// the lab's SSM service, and sandbox hosts with a real sshd, useradd and
// sudo. They judge it by what a person notices: a login that works, a login
// that is refused, a user that is gone.

// testLab is a running lab with a Service wired to it.
type testLab struct {
	*lab.Lab
	ssm   *ssmsdk.Client
	clock *clock.Fake
	svc   *Service
}

// The lab helpers these tests share with other packages.
var (
	onHost        = labtest.OnHost
	hostKey       = labtest.HostKey
	login         = labtest.Login
	mustLogIn     = labtest.MustLogIn
	mustBeRefused = labtest.MustBeRefused
)

// startLab starts a lab with sandbox hosts (skipping when they cannot boot
// here) and model nodes.
func startLab(t testing.TB, hosts, models int) *testLab {
	t.Helper()
	return startLabWith(t, lab.Options{Hosts: hosts, ModelNodes: models}, clock.NewFake(time.Now()))
}

// startLabWith starts a lab with opts, in a directory of its own, and a
// Service whose clock is clk.
func startLabWith(t testing.TB, opts lab.Options, clk *clock.Fake) *testLab {
	t.Helper()
	l := labtest.Start(t, opts)
	c := ssmsdk.NewFromConfig(l.AWSConfig())
	tl := &testLab{Lab: l, ssm: c, clock: clk}
	tl.svc = tl.service(t, "")
	return tl
}

// service returns a Service on the lab with the lab's fake clock.
func (l *testLab) service(t testing.TB, prefix string) *Service {
	t.Helper()
	svc, err := New(Config{
		Fleet:          fleet.New(l.ssm, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond, ThrottleBackoff: 10 * time.Millisecond}),
		Now:            l.clock.Now,
		UsernamePrefix: prefix,
		Timeout:        2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (l *testLab) hostIDs() []string {
	var ids []string
	for _, h := range l.Hosts {
		ids = append(ids, h.Info().InstanceID)
	}
	return ids
}

func newCA(t testing.TB) *sshca.CA {
	t.Helper()
	ca, err := sshca.Generate(sshca.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func request(ca *sshca.CA, targets ...string) Request {
	return Request{
		Reason:    "investigate the disk alert on the web tier",
		Targets:   targets,
		Duration:  time.Hour,
		CA:        ca,
		Requester: "arn:aws:iam::123456789012:user/alice",
	}
}

func grant(t testing.TB, svc *Service, req Request) *Grant {
	t.Helper()
	g, err := svc.Grant(context.Background(), req)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	return g
}

// hasUser reports whether the host has the user, or its home.
func hasUser(t testing.TB, h *sandbox.Host, user string) bool {
	t.Helper()
	return onHost(t, h, "if id -u "+user+" >/dev/null 2>&1 || [ -e /home/"+user+" ]; then echo yes; else echo no; fi") == "yes"
}

// passportUsers lists the grant records on a host: Passport users present
// or half-made.
func passportUsers(t testing.TB, h *sandbox.Host) string {
	t.Helper()
	return onHost(t, h, "ls /var/lib/passport/grants 2>/dev/null | tr '\\n' ' '")
}

// credential is what a person holds after a grant: a key with its
// certificate, as Go's client and as OpenSSH's files.
type credential struct {
	signer   ssh.Signer
	keyFile  string
	certFile string
}

// credentialOf builds g's credential from the grant's generated private key,
// or from priv when the requester brought their own key.
func credentialOf(t testing.TB, g *Grant, priv ed25519.PrivateKey) credential {
	t.Helper()
	var key ssh.Signer
	var err error
	pemBytes := []byte(g.PrivateKey)
	if priv != nil {
		key, err = ssh.NewSignerFromKey(priv)
		block, merr := ssh.MarshalPrivateKey(priv, "")
		if merr != nil {
			t.Fatal(merr)
		}
		pemBytes = pem.EncodeToMemory(block)
	} else {
		key, err = ssh.ParsePrivateKey(pemBytes)
	}
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(g.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		t.Fatalf("grant certificate is a %T", pub)
	}
	signer, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := credential{signer: signer, keyFile: filepath.Join(dir, "key"), certFile: filepath.Join(dir, "cert.pub")}
	if err := os.WriteFile(c.keyFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.certFile, []byte(g.Certificate+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

func certificate(t testing.TB, g *Grant) *ssh.Certificate {
	t.Helper()
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(g.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	return pub.(*ssh.Certificate)
}

// opensshLogin logs in with the OpenSSH client, as a person would:
// ssh -i key -o CertificateFile=cert.
func opensshLogin(t testing.TB, h *sandbox.Host, user string, c credential) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("the OpenSSH client is not installed (openssh-client)")
	}
	addr, port, _ := net.SplitHostPort(h.SSHAddr())
	known := filepath.Join(t.TempDir(), "known_hosts")
	pattern := addr
	if port != "22" {
		pattern = "[" + addr + "]:" + port
	}
	if err := os.WriteFile(known, []byte(pattern+" "+string(ssh.MarshalAuthorizedKey(hostKey(t, h)))), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh", "-F", "none", "-i", c.keyFile, "-o", "CertificateFile="+c.certFile, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+known, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-p", port, user+"@"+addr, "id -un")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, stderr.Bytes())
	}
	return strings.TrimSpace(string(out)), nil
}

// answeringNode is a model host that reads which Passport program it was
// sent and answers as that program would, without an OS behind it: enough
// for scale and for failure injection, never for what a host does.
type answeringNode struct {
	info node.Info
	mu   sync.Mutex
	// fail maps a program's action to the exit codes of its next runs;
	// once they are used up, the action succeeds.
	fail map[string][]int
	// slow maps an action to how long it takes; a cancelled command ends
	// it early, as the agent kills a script.
	slow map[string]time.Duration
	runs []string // "action user", in order
}

var dataLine = regexp.MustCompile(`(?m)^PASSPORT_DATA='([A-Za-z0-9+/=]*)'$`)

func newAnsweringNode(l *testLab, fail map[string][]int) *answeringNode {
	b := make([]byte, 9)
	rand.Read(b)
	n := &answeringNode{
		info: node.Info{InstanceID: "i-" + hex.EncodeToString(b)[:17], ComputerName: "answering", IPAddress: "198.51.100.200",
			PlatformType: node.Linux, PlatformName: "Model", AgentVersion: sandbox.AgentVersion},
		fail: fail,
	}
	l.SSM.AddNode(n)
	return n
}

func (n *answeringNode) Info() node.Info { return n.info }
func (n *answeringNode) Online() bool    { return true }

func (n *answeringNode) Run(ctx context.Context, s node.Script) (node.Result, error) {
	action := "unknown"
	user := ""
	if m := dataLine.FindStringSubmatch(s.Source); m != nil {
		data, _ := base64.StdEncoding.DecodeString(m[1])
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "action="); ok {
				action = v
			}
			if v, ok := strings.CutPrefix(line, "user="); ok {
				user = v
			}
		}
	}
	n.mu.Lock()
	n.runs = append(n.runs, action+" "+user)
	code := 0
	if codes := n.fail[action]; len(codes) > 0 {
		code, n.fail[action] = codes[0], codes[1:]
	}
	delay := n.slow[action]
	n.mu.Unlock()
	select {
	case <-ctx.Done():
		return node.Result{}, ctx.Err()
	case <-time.After(delay):
	}
	if code != 0 {
		return node.Result{ExitCode: code,
			Stdout: fmt.Appendf(nil, "passport-result action=%s status=error code=%d step=test\n", action, code),
			Stderr: fmt.Appendf(nil, "passport %s: step test failed: injected failure %d\n", action, code)}, nil
	}
	out := fmt.Sprintf("passport-result action=%s status=ok user=%s", action, user)
	if action == "check" {
		out += " account=passport record=this expires=1"
	}
	return node.Result{Stdout: []byte(out + "\n")}, nil
}

// actions lists the programs the node ran, in order, each as "action user".
func (n *answeringNode) actions() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.runs...)
}
