package provider

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/hashicorp/terraform-plugin-testing/echoprovider"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/connect"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/winhost"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/winpass"
)

// logonThroughTunnel checks user and password at target's port 3389 the
// way a person's RDP client reaches it: a Session Manager port session,
// forwarded from a local port as passport rdp does. It returns nil when the
// host let them in and a *winhost.DeniedError when it refused.
func logonThroughTunnel(l *accLab, target, user, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := connect.Connector{API: ssm.NewFromConfig(l.AWSConfig())}
	s, err := c.Start(ctx, target, winhost.RDPPort, connect.PortForwardDocument)
	if err != nil {
		return fmt.Errorf("tunnel to %s: %w", target, err)
	}
	defer s.End()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- connect.Forward(ctx, ln, s.Conn, nil) }()
	err = winhost.Logon(ctx, ln.Addr().String(), user, password)
	cancel()
	return errors.Join(err, <-done)
}

func denied(err error) bool {
	var d *winhost.DeniedError
	return errors.As(err, &d)
}

// secretsAbsent fails when any of secrets appears in the test's ledger
// (grants and audit trail) or in Terraform's log.
func secretsAbsent(t *testing.T, logPath string, secrets ...string) error {
	ctx := context.Background()
	book, err := ledger.Open(ctx, os.Getenv("PASSPORT_LEDGER"), ledger.Options{})
	if err != nil {
		return err
	}
	defer book.Close()
	var recorded strings.Builder
	for _, s := range []ledger.State{ledger.Provisioning, ledger.Active, ledger.Revoking, ledger.Revoked, ledger.Expired, ledger.Failed} {
		grants, err := book.List(ctx, s)
		if err != nil {
			return err
		}
		fmt.Fprintf(&recorded, "%+v\n", grants)
	}
	events, err := book.Events(ctx, ledger.Filter{})
	if err != nil {
		return err
	}
	fmt.Fprintf(&recorded, "%+v\n", events)
	logged, err := os.ReadFile(logPath)
	if err != nil {
		return fmt.Errorf("terraform's log: %w", err)
	}
	// A log that never saw the request would prove nothing.
	if !strings.Contains(string(logged), "passport_access_request") {
		return fmt.Errorf("terraform's log at %s does not mention the request (%d bytes): is TF_LOG honoured?", logPath, len(logged))
	}
	for _, s := range secrets {
		if strings.Contains(recorded.String(), s) {
			return errors.New("a Windows password is in the ledger")
		}
		if strings.Contains(string(logged), s) {
			return errors.New("a Windows password is in Terraform's log")
		}
	}
	return nil
}

// TestAccMixedLinuxAndWindows: one request for a Linux and a Windows
// target. The certificate logs in to the Linux host over SSH; the Windows
// target's password logs on through a Session Manager tunnel to its port
// 3389 during the window, not after it, and not after destroy. Passwords
// are sensitive, one per Windows target, and never reach the ledger or
// Terraform's log.
//
// Through the service it runs as the lab's requester machine, whose AWS
// credentials are the provider process's only ones and are refused on the
// access path: the grant, the logins and the password are the service's
// doing, and the password, sealed to a key only the provider held, is in
// neither the service's ledger nor Terraform's log.
func TestAccMixedLinuxAndWindows(t *testing.T) {
	runModes(t, []accMode{direct, serviceMachine}, testMixedLinuxAndWindows)
}

func testMixedLinuxAndWindows(t *testing.T, mode accMode) {
	l := startAccLabIn(t, lab.Options{Hosts: 1, WindowsHosts: 1}, mode)
	linux, win := l.Hosts[0], l.Windows[0]
	linuxID, winID := linux.Info().InstanceID, win.Info().InstanceID
	logPath := filepath.Join(t.TempDir(), "terraform.log")
	t.Setenv("TF_LOG", "TRACE")
	t.Setenv("TF_LOG_PATH", logPath)

	const addr = "passport_access_request.mixed"
	caDecl, caAttr := l.ca("mixed")
	config := l.config(caDecl + fmt.Sprintf(`
resource "passport_access_request" "mixed" {
  reason                = "INC-7: patch the web and the reporting servers"
  duration              = "1h"
  targets               = [%q, %q]
  %s
}
`, linuxID, winID, caAttr))

	var creds loginCredentials
	var password, id string
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(addr, "requester", mode.requester()),
					resource.TestCheckResourceAttr(addr, "target_platforms."+linuxID, "Linux"),
					resource.TestCheckResourceAttr(addr, "target_platforms."+winID, "Windows"),
					resource.TestCheckResourceAttr(addr, "target_status."+winID, "active"),
					resource.TestCheckResourceAttr(addr, "passwords.%", "1"),
					resource.TestCheckResourceAttrSet(addr, "ssh_commands."+linuxID),
					resource.TestCheckNoResourceAttr(addr, "ssh_commands."+winID),
					resource.TestCheckResourceAttr(addr, "passport_commands."+winID, "passport rdp "+winID),
					func(s *terraform.State) error {
						a, err := attributes(s, addr)
						if err != nil {
							return err
						}
						id, password = a["id"], a["passwords."+winID]
						if err := winpass.Check(password, a["username"]); err != nil {
							return fmt.Errorf("the Windows password breaks the rules: %w", err)
						}
						if creds, err = credentialsOf(a, nil); err != nil {
							return err
						}
						return creds.checkLogin(linux, false)
					},
					func(*terraform.State) error {
						if err := logonThroughTunnel(l, winID, creds.user, password); err != nil {
							return fmt.Errorf("the Windows password through the tunnel, inside the window: %w", err)
						}
						if err := logonThroughTunnel(l, winID, creds.user, password+"x"); !denied(err) {
							return fmt.Errorf("a wrong password through the tunnel: %v, want a denial", err)
						}
						return nil
					},
				),
			},
			{
				// Past the window, the host itself refuses the account
				// (AccountExpires), before any reconciler has run. The
				// clock goes back after: plans do not store state.
				PreConfig: func() {
					l.clock.Advance(time.Hour + time.Minute)
					err := logonThroughTunnel(l, winID, creds.user, password)
					l.clock.Advance(-time.Hour - time.Minute)
					if !denied(err) {
						t.Fatalf("the Windows password after the window: %v, want a denial", err)
					}
				},
				Config: config,
				// The plan shows the passwords only as sensitive.
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(addr, plancheck.ResourceActionNoop),
					plancheck.ExpectSensitiveValue(addr, tfjsonpath.New("passwords")),
				}},
				Check: func(*terraform.State) error {
					return logonThroughTunnel(l, winID, creds.user, password)
				},
			},
		},
		CheckDestroy: func(*terraform.State) error {
			if err := logonThroughTunnel(l, winID, creds.user, password); !denied(err) {
				return fmt.Errorf("the Windows password after destroy: %v, want a denial", err)
			}
			if _, ok := win.Account(creds.user); ok {
				return fmt.Errorf("%s still has %s after destroy", winID, creds.user)
			}
			return errors.Join(creds.checkRefused(linux), checkLedger(t, id, ledger.Revoked, ledger.ActionRevoked),
				secretsAbsent(t, logPath, password))
		},
	})
}

// TestAccEphemeralAccessRequest: an ephemeral request grants access for
// one run and revokes it when Terraform closes it; its credentials reach
// only what the run hands them to (here the echo provider, which exists to
// show them to tests), never the request's own state.
//
// Through the service it runs as alice, whom policy lets reach staging
// with a ticket in the reason.
func TestAccEphemeralAccessRequest(t *testing.T) {
	runModes(t, []accMode{direct, serviceAlice}, testEphemeralAccessRequest)
}

func testEphemeralAccessRequest(t *testing.T, mode accMode) {
	l := startAccLabIn(t, lab.Options{Hosts: 1, WindowsHosts: 1}, mode)
	linux, win := l.Hosts[0], l.Windows[0]
	linuxID, winID := linux.Info().InstanceID, win.Info().InstanceID
	factories := l.factories()
	factories["echo"] = echoprovider.NewProviderServer()
	caDecl, caAttr := l.ca("ephemeral")
	ca := l.config(caDecl)
	var creds loginCredentials
	var password string
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_10_0)},
		ProtoV6ProviderFactories: factories,
		Steps: []resource.TestStep{
			{Config: ca},
			{
				Config: ca + fmt.Sprintf(`
ephemeral "passport_access_request" "run" {
  reason                = "INC-9: configure the servers in this run"
  duration              = "30m"
  targets               = [%q, %q]
  %s
}
provider "echo" {
  data = ephemeral.passport_access_request.run
}
resource "echo" "creds" {}
`, linuxID, winID, caAttr),
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestMatchResourceAttr("echo.creds", "data.id", regexp.MustCompile(`^ar-[0-9a-f]{16}$`)),
					resource.TestCheckResourceAttr("echo.creds", "data.target_status."+winID, "active"),
					func(s *terraform.State) error {
						a, err := attributes(s, "echo.creds")
						if err != nil {
							return err
						}
						fields := map[string]string{}
						for k, v := range a {
							if rest, ok := strings.CutPrefix(k, "data."); ok {
								fields[rest] = v
							}
						}
						password = fields["passwords."+winID]
						if err := winpass.Check(password, fields["username"]); err != nil {
							return fmt.Errorf("the ephemeral Windows password breaks the rules: %w", err)
						}
						if creds, err = credentialsOf(fields, nil); err != nil {
							return err
						}
						// Terraform closed the request when the run ended:
						// what it handed out opens nothing now.
						if err := logonThroughTunnel(l, winID, creds.user, password); !denied(err) {
							return fmt.Errorf("the ephemeral Windows password after the run: %v, want a denial", err)
						}
						return errors.Join(creds.checkRefused(linux), checkLedger(t, fields["id"], ledger.Revoked, ledger.ActionProvisioned, ledger.ActionRevoked))
					},
					func(s *terraform.State) error {
						for _, r := range s.RootModule().Resources {
							if r.Type == "passport_access_request" {
								return fmt.Errorf("an ephemeral request reached the state as %s", r.Primary.ID)
							}
						}
						return nil
					},
				),
			},
		},
	})
}

// TestAccPlanWarnsWhatWindowsIgnores: a request with public_key and a
// Windows target plans with a warning, naming that target, that the key is
// not used there; one on Linux alone plans without it. Through the
// service, which instances are Windows is the service's answer.
func TestAccPlanWarnsWhatWindowsIgnores(t *testing.T) {
	runModes(t, []accMode{direct, serviceMachine}, testPlanWarnsWhatWindowsIgnores)
}

func testPlanWarnsWhatWindowsIgnores(t *testing.T, mode accMode) {
	l := startAccLabIn(t, lab.Options{Hosts: 1, WindowsHosts: 1}, mode)
	linuxID, winID := l.Hosts[0].Info().InstanceID, l.Windows[0].Info().InstanceID
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ssh.NewPublicKey(pub)
	caDecl, caAttr := l.ca("warned")
	request := func(targets ...string) string {
		return l.config(caDecl + fmt.Sprintf(`
resource "passport_access_request" "r" {
  reason                = "INC-12: a key for a Windows server"
  targets               = %s
  public_key            = %q
  %s
}
`, hclList(targets), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key))), caAttr))
	}
	const warning = "public_key is not used on Windows targets"
	terraform := newTerraformCLI(t)
	for _, tc := range []struct {
		targets []string
		warned  bool
	}{
		{[]string{linuxID, winID}, true},
		{[]string{winID}, true},
		{[]string{linuxID}, false},
	} {
		terraform.configure(t, request(tc.targets...))
		out, err := terraform.command("plan").CombinedOutput()
		if err != nil {
			t.Fatalf("terraform plan for %v: %v\n%s", tc.targets, err, out)
		}
		// Terraform wraps a warning's lines to its own width.
		plan := strings.Join(strings.Fields(string(out)), " ")
		if strings.Contains(plan, warning) != tc.warned {
			t.Errorf("terraform plan for %v warns %q: %v, want %v\n%s", tc.targets, warning, !tc.warned, tc.warned, plan)
		}
		if tc.warned && (!strings.Contains(plan, winID+" is Windows") || strings.Contains(plan, linuxID+" is")) {
			t.Errorf("the warning does not name exactly the Windows target %s:\n%s", winID, plan)
		}
	}
}
