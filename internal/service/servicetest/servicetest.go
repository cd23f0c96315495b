// Package servicetest runs the Passport service on a lab for the tests of
// its clients (the CLI, the Terraform provider), as `passport lab up`
// runs it: the lab's service identity, a sqlite ledger, a KMS certificate
// authority, the lab's policy in Parameter Store, its IdP, and machines
// allowed to sign in with their AWS identity.
package servicetest

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/service"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// Service is a running Passport service.
type Service struct {
	*service.Service
	// URL is where it serves, http://127.0.0.1:PORT.
	URL string
	// Ledger is its ledger's URL.
	Ledger string
	// CA is its certificate authority, named "lab".
	CA *sshca.CA
}

// Start runs the service on l until the test ends. change adjusts its
// settings before it starts.
func Start(t testing.TB, l *lab.Lab, change ...func(*service.Settings)) *Service {
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
	s.URL = "http://" + ln.Addr().String()
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
	go func() { done <- svc.Run(runCtx, ln, false) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("the Passport service stopped with %v", err)
		}
		svc.Close()
	})
	return s
}
