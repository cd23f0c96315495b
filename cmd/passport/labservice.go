package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/notify"
	"github.com/passport-access/terraform-provider-passport/internal/service"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// labService is the Passport service `passport lab up` runs on its lab, as
// an operator would run `passport serve`: its own AWS identity (the lab's
// service identity, allowed exactly examples/iam/passport-service.json),
// TLS from a CA the lab makes, a KMS certificate authority, the lab's
// policy and IdP, and the lab's ledger.
type labService struct {
	URL, CAFile string
	done        chan error
}

// startLabService starts the service on l until ctx ends.
func startLabService(ctx context.Context, l *lab.Lab, listen string, notices *notify.Config, log *slog.Logger) (*labService, error) {
	// The CA is the operator's doing, as passport_certificate_authority
	// does it: a KMS key tagged as Passport's, which the service's role
	// may use and nothing else.
	ca, err := sshca.CreateKMS(ctx, kms.NewFromConfig(l.AWSConfig()), sshca.Ed25519,
		sshca.KMSKeyOptions{Description: "Passport lab service CA", Tags: map[string]string{"passport:certificate-authority": "lab"}})
	if err != nil {
		return nil, fmt.Errorf("lab service: creating its certificate authority: %w", err)
	}
	cert, caFile, err := l.ServingCertificate()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("lab service: --service-listen %s: %w", listen, err)
	}
	url := "https://" + ln.Addr().String()
	e := l.Endpoint
	svc, err := service.New(ctx, service.Settings{
		URL: url,
		AWS: awsconfig.Settings{Region: l.Region, Endpoints: awsconfig.Endpoints{SSM: e, KMS: e, STS: e, SSMMessages: e, EC2: e, S3: e},
			Credentials: credentials.NewStaticCredentialsProvider(l.Service.AccessKeyID, l.Service.SecretAccessKey, "")},
		Ledger:       "sqlite://" + filepath.Join(l.Dir, "ledger.db"),
		CAs:          []string{"lab=kms:" + ca.KMSKeyID()},
		PolicySource: "ssm://" + lab.PolicyParameter,
		SAMLMetadata: l.IdP.MetadataURL(),
		// The lab's IdP knows one service provider, "passport"; a company's
		// IdP registers the service under its own entity ID.
		SAMLEntityID: "passport",
		Machines:     true,
		// Every login to a lab host is recorded and collected into the
		// lab's S3, as a company's service would do.
		RecordingsBucket: lab.RecordingsBucket,
		Reconcile:        30 * time.Second,
		Notify:           notices,
		Sweep:            true,
		Name:             "service/lab",
		Version:          version,
		Log:              log,
	})
	if err != nil {
		ln.Close()
		return nil, err
	}
	s := &labService{URL: url, CAFile: caFile, done: make(chan error, 1)}
	tlsLn := tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	go func() {
		err := svc.Run(ctx, tlsLn, true)
		svc.Close()
		s.done <- err
	}()
	if err := l.AddEnv(client.EnvServer+"="+url, client.EnvServerCA+"="+caFile); err != nil {
		return nil, err
	}
	return s, nil
}

// wait waits for the service to stop after its context ended.
func (s *labService) wait() error { return <-s.done }
