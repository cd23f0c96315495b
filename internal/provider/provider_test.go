package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/service"
)

// accLab is one acceptance test's world: a lab with its own AWS endpoint and
// sandbox hosts, the clock the provider under test reads, and, in service
// mode, the Passport service the provider calls.
type accLab struct {
	*lab.Lab
	// clock is the provider's (and the service's): real time plus an
	// offset a test moves forward, so that "the window has ended" needs no
	// sleep while certificates stay valid for the hosts' real sshd until
	// then.
	clock *clock.Offset
	mode  accMode
	// server is the service's URL and serverCA the file with the CA its
	// TLS certificate chains to, in service mode; svc is the service.
	server, serverCA string
	svc              *service.Service
}

// startAccLab starts a lab for one acceptance test and points Terraform and
// the AWS SDK at it. It skips unless TF_ACC is set, and, when hosts are
// wanted, unless sandbox hosts can boot here (root, sshd, overlayfs).
func startAccLab(t *testing.T, hosts int) *accLab {
	t.Helper()
	return startAccLabIn(t, lab.Options{Hosts: hosts}, direct)
}

// startAccLabWith is startAccLab for a lab described by opts.
func startAccLabWith(t *testing.T, opts lab.Options) *accLab {
	t.Helper()
	return startAccLabIn(t, opts, direct)
}

// startAccLabIn is startAccLabWith for the provider in mode: direct, or a
// client of a Passport service started here on the lab. The lab's
// directory and clock are set here. The lab reads the provider's clock, so
// Windows accounts and Session Manager tokens expire by the test's time.
func startAccLabIn(t *testing.T, opts lab.Options, mode accMode) *accLab {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 to run it (make testacc)")
	}
	if _, err := exec.LookPath("terraform"); err != nil && os.Getenv("TF_ACC_TERRAFORM_PATH") == "" {
		t.Skip("acceptance test: no terraform CLI on PATH and TF_ACC_TERRAFORM_PATH is unset (scripts/install.sh builds one)")
	}
	if opts.Hosts > 0 {
		if err := sandbox.Available(); err != nil {
			t.Skip(err)
		}
	}

	// The environment may point TF_CLI_CONFIG_FILE at a missing file;
	// terraform must read an empty configuration of ours.
	rc := filepath.Join(t.TempDir(), "terraformrc")
	if err := os.WriteFile(rc, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_CLI_CONFIG_FILE", rc)
	t.Setenv("TF_ACC_TEMP_DIR", t.TempDir())
	t.Setenv("CHECKPOINT_DISABLE", "1")
	// Direct mode unless the mode says otherwise, whatever the machine's
	// environment names; and no person's kept sign-in of the machine's.
	t.Setenv(client.EnvServer, "")
	t.Setenv(client.EnvServerCA, "")
	t.Setenv("PASSPORT_TOKEN", "")
	t.Setenv("PASSPORT_CONFIG_DIR", t.TempDir())

	// A short directory: host agent sockets live under it, and unix socket
	// paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "acc")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	clk := &clock.Offset{}
	opts.Dir, opts.Now = dir, clk.Now
	l, err := lab.Start(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	// Each test keeps its own ledger (the lab's), not the user's default
	// one.
	for _, kv := range l.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	a := &accLab{Lab: l, clock: clk, mode: mode}
	if mode.service() {
		a.startService(t)
	}
	return a
}

// factories serves the provider in-process, reading the lab's clock.
func (a *accLab) factories() map[string]func() (tfprotov6.ProviderServer, error) {
	return map[string]func() (tfprotov6.ProviderServer, error){
		"passport": providerserver.NewProtocol6WithError(&passportProvider{
			version: "test",
			now:     a.clock.Now,
			// The lab's hosts answer in milliseconds; AWS's defaults
			// would spend most of the suite waiting to poll.
			fleet: fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond, ThrottleBackoff: 10 * time.Millisecond},
		}),
	}
}

// config prefixes a test configuration with a provider block as a user's
// configuration would have it: the lab's endpoints in direct mode; the
// service's URL and CA bundle for a person in service mode; nothing for
// the machine, which reads PASSPORT_SERVER and PASSPORT_SERVER_CA as a CI
// job would.
func (a *accLab) config(body string) string {
	switch {
	case a.mode.machine:
		return "\nprovider \"passport\" {}\n" + body
	case a.mode.service():
		return fmt.Sprintf(`
provider "passport" {
  server         = %q
  server_ca_file = %q
}
`, a.server, a.serverCA) + body
	}
	return fmt.Sprintf(`
provider "passport" {
  endpoints {
    ssm = %[1]q
    kms = %[1]q
    sts = %[1]q
    ec2 = %[1]q
  }
}
`, a.Endpoint) + body
}

// ca is, in direct mode, the declaration of a state-stored certificate
// authority called name and the certificate_authority line that signs
// with it. In service mode the service owns its CAs: there is nothing to
// declare, and leaving the line out picks the service's default.
func (a *accLab) ca(name string) (decl, attr string) {
	if a.mode.service() {
		return "", ""
	}
	return fmt.Sprintf(`
resource "passport_certificate_authority" %[1]q {
  name          = %[1]q
  key_algorithm = "ed25519"
  key_store     = "state"
}
`, name), fmt.Sprintf("certificate_authority = passport_certificate_authority.%s.signer", name)
}

// kmsClient is the real SDK client on the lab's KMS, for checks made
// behind the provider's back.
func (a *accLab) kmsClient() *kms.Client {
	return kms.NewFromConfig(a.AWSConfig())
}

// attributes returns the state attributes of the resource at address.
func attributes(s *terraform.State, address string) (map[string]string, error) {
	r, ok := s.RootModule().Resources[address]
	if !ok || r.Primary == nil {
		return nil, fmt.Errorf("%s is not in the state", address)
	}
	return r.Primary.Attributes, nil
}
