package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
	"github.com/passport-access/terraform-provider-passport/internal/service"
	"github.com/passport-access/terraform-provider-passport/internal/service/servicetest"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// The acceptance tests run the provider in two modes: direct, where it
// does everything itself with the lab operator's AWS credentials, and as a
// client of a Passport service the test starts on the lab (service mode),
// signed in as a person or as a machine. A test that makes sense in both
// runs the same steps once per mode (runModes), with what differs between
// modes (the provider block, the certificate authority, who the requester
// is) taken from the accLab.
//
// Not every test runs in both modes: the suite runs twice in CI (Terraform
// and OpenTofu), and most of its time is hosts being provisioned. The
// service-mode runs are a subset that still covers every resource, data
// source and the ephemeral resource, each as a different caller, for about
// a minute and a half a run:
//
//   - TestAccAccessRequest (the managed resource's whole life: create with a
//     generated and a given key, extension, targets added and removed,
//     replacement, the window's end, a host down, a user gone, and in
//     service mode the request ended at the service, destroy) as carol, a
//     person in admins and ops, through the service's default CA and a
//     second one named in the configuration;
//   - TestAccMixedLinuxAndWindows and TestAccPlanWarnsWhatWindowsIgnores as
//     the lab's requester machine, whose AWS credentials are the provider
//     process's only ones and are refused on the access path (the second
//     runs the provider as Terraform runs it, in a process of its own):
//     Windows passwords sealed to the provider's own key, never in the
//     service's ledger or Terraform's log;
//   - TestAccEphemeralAccessRequest as alice, a person whom policy limits
//     to staging;
//   - TestAccTargetsDataSource and TestAccIdentityDataSource (no sandbox
//     hosts, seconds each) as a person and as the machine;
//   - TestAccAccessRequestRefusals, where service mode adds its own
//     refusals (passport_certificate_authority, a signer sent as a CA's
//     name, settings the service owns, plain http);
//   - service mode only: TestAccServiceExample (examples/service as the
//     docs show it), TestAccCreateRetriedAfterADroppedConnection and
//     TestAccCreateWaitsForApproval (as bob, whom policy makes wait for
//     an approver).
//
// The certificate authority's own test, policy read from a file, SAML
// sessions in the provider, the killed apply and the reconciler are direct
// mode's machinery and stay direct: the service's own tests
// (internal/service) cover its policy, sign-in, replicas and reconciler.

// accMode is how the provider under test reaches the hosts.
type accMode struct {
	name string
	// person signs in to the service as this lab person, as `passport login
	// --server` does, and the provider reads the token it kept.
	person string
	// machine signs in to the service with the lab requester's AWS
	// identity, the only AWS credentials the provider then has.
	machine bool
}

var (
	direct         = accMode{name: "direct"}
	serviceAlice   = accMode{name: "service_as_alice", person: "alice"}
	serviceCarol   = accMode{name: "service_as_carol", person: "carol"}
	serviceMachine = accMode{name: "service_as_requester_machine", machine: true}
)

func (m accMode) service() bool { return m.person != "" || m.machine }

// requester is who the mode's requests name as their requester.
func (m accMode) requester() string {
	switch {
	case m.machine:
		return lab.RequesterARN
	case m.person != "":
		return m.person
	}
	return lab.OperatorARN
}

// runModes runs test once per mode, each as a subtest named after it.
func runModes(t *testing.T, modes []accMode, test func(t *testing.T, mode accMode)) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) { test(t, m) })
	}
}

// startService starts the Passport service on the lab, as `passport lab
// up` would (servicetest.StartTLS: the lab's service identity, a sqlite
// ledger, the lab's policy in Parameter Store and its IdP, machines
// allowed, TLS from the lab's CA), on the test's clock, with a second KMS
// CA beside its default "lab", called "second". Then it signs the mode's caller
// in and leaves the provider process only what that caller would have.
func (a *accLab) startService(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	second, err := sshca.CreateKMS(ctx, kms.NewFromConfig(a.AWSConfig()), sshca.ECDSAP256,
		sshca.KMSKeyOptions{Description: "acceptance test CA second", Tags: map[string]string{"passport:certificate-authority": "second"}})
	if err != nil {
		t.Fatal(err)
	}
	svc := servicetest.StartTLS(t, a.Lab, func(st *service.Settings) {
		st.CAs = append(st.CAs, "second=kms:"+second.KMSKeyID())
		st.Now = a.clock.Now
		st.Fleet.ThrottleBackoff = 10 * time.Millisecond
	})
	a.server, a.serverCA, a.svc = svc.URL, svc.CAFile, svc.Service
	// The tests read the ledger of whoever granted: here, the service's.
	t.Setenv("PASSPORT_LEDGER", svc.Ledger)

	// What the provider process holds: a person's kept token and no AWS
	// credentials at all, or the machine's own AWS credentials.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	if a.mode.machine {
		t.Setenv("AWS_ACCESS_KEY_ID", a.Requester.AccessKeyID)
		t.Setenv("AWS_SECRET_ACCESS_KEY", a.Requester.SecretAccessKey)
		// The way a CI job names its service.
		t.Setenv(client.EnvServer, a.server)
		t.Setenv(client.EnvServerCA, a.serverCA)
		a.refusedAroundTheService(t)
		return
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	// What `passport login --server` leaves behind.
	hc := trusting(t, a.serverCA)
	code, verifier, err := idp.ServiceLoginCode(ctx, hc.Transport, a.server, a.mode.person, a.mode.person+"-lab")
	if err != nil {
		t.Fatalf("signing %s in: %v", a.mode.person, err)
	}
	anon, err := client.New(a.server, client.Options{HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := anon.ExchangeCode(ctx, code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.SaveToken(a.server, tok); err != nil {
		t.Fatal(err)
	}
	if cfg, err := config.LoadDefaultConfig(ctx); err == nil {
		if _, err := cfg.Credentials.Retrieve(ctx); err == nil {
			t.Fatal("the provider process still finds AWS credentials; a person in service mode must need none")
		}
	}
}

// refusedAroundTheService checks the trust claim's first half: the AWS
// credentials the provider process holds (the lab's requester) are refused
// SendCommand and the policy, so whatever access the test then gets came
// through the service.
func (a *accLab) refusedAroundTheService(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(a.Region))
	if err != nil {
		t.Fatal(err)
	}
	c := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = aws.String(a.Endpoint) })
	target := "i-0123456789abcdef0"
	if len(a.Hosts) > 0 {
		target = a.Hosts[0].Info().InstanceID
	}
	_, err = c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{target},
		Parameters: map[string][]string{"commands": {"useradd mallory"}}})
	var denied interface{ ErrorCode() string }
	if !errors.As(err, &denied) || denied.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("the provider's own AWS credentials ran SendCommand: %v; the lab's requester must be refused", err)
	}
	if _, err := c.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(lab.PolicyParameter)}); !errors.As(err, &denied) {
		t.Fatalf("the provider's own AWS credentials read the policy: %v; want AccessDenied", err)
	}
}

// trusting is an HTTP client that trusts the CA in file and nothing else.
func trusting(t *testing.T, file string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", file)
	}
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
