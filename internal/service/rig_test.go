package service

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// rig is a lab with the Passport service running on it, as `passport lab
// up` runs it: the service's own AWS identity, a sqlite ledger, a KMS CA,
// the lab's policy in Parameter Store and its IdP.
type rig struct {
	lab    *lab.Lab
	svc    *Service
	url    string
	ledger string
	cancel context.CancelFunc
	done   chan error
	// settings are what the service started with, and ca its CA: what a
	// direct grant on the same lab needs to be the same grant.
	settings Settings
	ca       *sshca.CA
}

// startRig starts a lab with hosts sandbox Linux hosts and windows lab
// Windows hosts, and the service on it.
func startRig(t testing.TB, hosts, windows int, change ...func(*Settings)) *rig {
	t.Helper()
	return startRigWith(t, lab.Options{Hosts: hosts, WindowsHosts: windows}, change...)
}

// startRigWith starts a lab with opts, and the service on it.
func startRigWith(t testing.TB, opts lab.Options, change ...func(*Settings)) *rig {
	t.Helper()
	l := labtest.Start(t, opts)
	ctx := context.Background()
	ca, err := sshca.CreateKMS(ctx, kms.NewFromConfig(l.AWSConfig()), sshca.Ed25519, sshca.KMSKeyOptions{Description: "service test CA", Tags: map[string]string{"passport:certificate-authority": "lab"}})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{lab: l, ledger: "sqlite://" + filepath.Join(t.TempDir(), "ledger.db"), ca: ca}
	st := Settings{
		AWS:            labAWS(l),
		Ledger:         r.ledger,
		CAs:            []string{"lab=kms:" + ca.KMSKeyID()},
		PolicySource:   "ssm://" + lab.PolicyParameter,
		SAMLMetadata:   l.IdP.MetadataURL(),
		SAMLEntityID:   "passport",
		Reconcile:      time.Hour,
		Fleet:          fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond},
		UsernamePrefix: "pp-",
	}
	for _, c := range change {
		c(&st)
	}
	r.start(t, st)
	return r
}

// labAWS is the service's AWS settings on the lab: every endpoint the
// lab's, with the lab's credentials.
func labAWS(l *lab.Lab) awsconfig.Settings {
	e := l.Endpoint
	return awsconfig.Settings{
		Region:      l.Region,
		Endpoints:   awsconfig.Endpoints{SSM: e, KMS: e, STS: e, SSMMessages: e, EC2: e},
		Credentials: credentials.NewStaticCredentialsProvider(l.Service.AccessKeyID, l.Service.SecretAccessKey, ""),
	}
}

// start runs a service with st on a loopback port until the test ends.
func (r *rig) start(t testing.TB, st Settings) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.url = "http://" + ln.Addr().String()
	st.URL = r.url
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, st)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	// Every answer of every test is held to the API document. Benchmarks
	// time the service as it runs, without the recorder.
	if _, bench := t.(*testing.B); !bench {
		svc.handler = recordAPI(t, svc.handler, svc.Server.Routes(), svc.Server.Pages()...)
	}
	r.svc, r.cancel, r.done, r.settings = svc, cancel, make(chan error, 1), st
	go func() { r.done <- svc.Run(ctx, ln, false) }()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("the service stopped with %v", err)
		}
		svc.Close()
	})
}

// anonymous is a client with no sign-in.
func (r *rig) anonymous(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.New(r.url, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// noRedirects is an HTTP client that shows redirects instead of
// following them, with a cookie jar as a browser has.
func noRedirects() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn signs person in as `passport login --server` does: a loopback
// redirect, a one-time code and a verifier, traded for a token.
func (r *rig) signIn(t testing.TB, person string) *client.Client {
	t.Helper()
	return r.anonymous(t).WithToken(r.token(t, person))
}

// loginCode runs the browser half of a CLI sign-in for person and returns
// the code the service sent to the loopback redirect, and its verifier.
func (r *rig) loginCode(t testing.TB, person string) (code, verifier string) {
	t.Helper()
	code, verifier, err := idp.ServiceLoginCode(context.Background(), nil, r.url, person, person+"-lab")
	if err != nil {
		t.Fatalf("signing %s in: %v", person, err)
	}
	return code, verifier
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// userKey is a person's own SSH key: the service signs its public half and
// never sees the private one.
type userKey struct {
	signer ssh.Signer
	line   string
}

func newUserKey(t testing.TB) userKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return userKey{signer: s, line: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey())))}
}

// codeOf is the service's error code of err.
func codeOf(err error) string { return client.CodeOf(err) }
