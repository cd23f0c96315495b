// Package servicetest runs the Passport service on a lab for the tests of
// its clients (the CLI, the Terraform provider), as `passport lab up`
// runs it: the lab's service identity, a sqlite ledger, a KMS certificate
// authority, the lab's policy in Parameter Store, its IdP, and machines
// allowed to sign in with their AWS identity.
package servicetest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
	"github.com/passport-access/terraform-provider-passport/internal/service"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// Service is a running Passport service.
type Service struct {
	*service.Service
	// URL is where it serves, http://127.0.0.1:PORT (https with StartTLS).
	URL string
	// CAFile holds the CA its TLS certificate chains to, with StartTLS.
	CAFile string
	// Ledger is its ledger's URL.
	Ledger string
	// CA is its certificate authority, named "lab".
	CA *sshca.CA
}

// Start runs the service on l until the test ends. change adjusts its
// settings before it starts.
func Start(t testing.TB, l *lab.Lab, change ...func(*service.Settings)) *Service {
	t.Helper()
	return start(t, l, false, change)
}

// StartTLS is Start serving HTTPS, with a certificate from the lab's own
// TLS CA (lab.ServingCertificate), as `passport lab up` serves it.
func StartTLS(t testing.TB, l *lab.Lab, change ...func(*service.Settings)) *Service {
	t.Helper()
	return start(t, l, true, change)
}

func start(t testing.TB, l *lab.Lab, withTLS bool, change []func(*service.Settings)) *Service {
	t.Helper()
	ctx := context.Background()
	// The operator makes the CA, as an administrator would; only the
	// service's role may sign with it.
	ca, err := sshca.CreateKMS(ctx, kms.NewFromConfig(l.AWSConfig()), sshca.Ed25519, sshca.KMSKeyOptions{
		Description: "Passport service test CA", Tags: map[string]string{"passport:certificate-authority": "lab"}})
	if err != nil {
		t.Fatal(err)
	}
	e := l.Endpoint
	s := &Service{Ledger: "sqlite://" + filepath.Join(t.TempDir(), "ledger.db"), CA: ca}
	st := service.Settings{
		AWS: awsconfig.Settings{
			Region:      l.Region,
			Endpoints:   awsconfig.Endpoints{SSM: e, KMS: e, STS: e, SSMMessages: e, EC2: e},
			Credentials: credentials.NewStaticCredentialsProvider(l.Service.AccessKeyID, l.Service.SecretAccessKey, ""),
		},
		Ledger:       s.Ledger,
		CAs:          []string{"lab=kms:" + ca.KMSKeyID()},
		PolicySource: "ssm://" + lab.PolicyParameter,
		SAMLMetadata: l.IdP.MetadataURL(),
		SAMLEntityID: "passport",
		Machines:     true,
		Reconcile:    time.Hour,
		Fleet:        fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond},
	}
	for _, c := range change {
		c(&st)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := &connList{Listener: ln}
	var served net.Listener = conns
	s.URL = "http://" + ln.Addr().String()
	if withTLS {
		cert, caFile, err := l.ServingCertificate()
		if err != nil {
			ln.Close()
			t.Fatal(err)
		}
		served = tls.NewListener(conns, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		s.URL, s.CAFile = "https://"+ln.Addr().String(), caFile
	}
	st.URL = s.URL
	runCtx, cancel := context.WithCancel(context.Background())
	svc, err := service.New(runCtx, st)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatal(err)
	}
	s.Service = svc
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx, served, withTLS) }()
	t.Cleanup(func() {
		cancel()
		// The test is over: a connection a client opened and never used
		// would hold the graceful shutdown for five seconds (net/http
		// waits that long for its first request).
		conns.closeAll()
		if err := <-done; err != nil {
			t.Errorf("the Passport service stopped with %v", err)
		}
		svc.Close()
	})
	return s
}

// connList is a listener that remembers what it accepted, to close it.
type connList struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *connList) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *connList) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
}

// Token signs person (one of the lab IdP's people, whose password is
// their name and "-lab") in as `passport login --server` does, through
// the loopback redirect and its one-time code, and returns their service
// token: what PASSPORT_TOKEN carries for a test's passport processes.
func (s *Service) Token(t testing.TB, person string) string {
	t.Helper()
	raw := make([]byte, 32)
	rand.Read(raw)
	verifier := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"redirect_uri":          {"http://127.0.0.1:9/callback"},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {"S256"},
		"state":                 {base64.RawURLEncoding.EncodeToString(raw[:12])},
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if s.CAFile != "" {
		pem, err := os.ReadFile(s.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		browser.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	resp, err := idp.SignInResponse(context.Background(), browser, s.URL+"/v1/login/cli?"+q.Encode(), person, person+"-lab")
	if err != nil {
		t.Fatalf("signing %s in: %v", person, err)
	}
	resp.Body.Close()
	to, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || to.Query().Get("code") == "" {
		t.Fatalf("signing %s in: the service answered %s to %q, without a code", person, resp.Status, resp.Header.Get("Location"))
	}
	c, err := client.New(s.URL, client.Options{CAFile: s.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.ExchangeCode(context.Background(), to.Query().Get("code"), verifier)
	if err != nil {
		t.Fatalf("trading %s's code: %v", person, err)
	}
	return tok.Token
}
