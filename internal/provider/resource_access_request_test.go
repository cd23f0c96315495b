package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

const (
	generatedAddr = "passport_access_request.generated"
	givenAddr     = "passport_access_request.given"
)

// requestConfig is the acceptance test's configuration: a request with a
// generated key pair, and one with the requester's own key and sudo. In
// direct mode a KMS-backed CA signs the first and a state-stored CA the
// second; through the service, the service's default CA signs the first
// (certificate_authority left out) and its CA named "second" the other.
type requestConfig struct {
	service           bool
	generatedDuration string
	generatedTargets  []string
	givenTargets      []string
	givenReason       string
	givenPublicKey    string
	broken            []string // targets of a request that must fail
}

func (c requestConfig) String() string {
	generatedCA := "certificate_authority = passport_certificate_authority.kms.signer"
	givenCA := "certificate_authority = passport_certificate_authority.state.signer"
	s := `
resource "passport_certificate_authority" "kms" {
  name          = "acc-kms"
  key_algorithm = "ecdsa-p256"
  key_store     = "kms"
}

resource "passport_certificate_authority" "state" {
  name          = "acc-state"
  key_algorithm = "ed25519"
  key_store     = "state"
}
`
	if c.service {
		s, generatedCA, givenCA = "", "", `certificate_authority = "second"`
	}
	s += fmt.Sprintf(`
resource "passport_access_request" "generated" {
  reason                = "INC-100 acceptance test: generated key pair"
  targets               = %s
  duration              = %q
  %s
}

resource "passport_access_request" "given" {
  reason                = %q
  targets               = %s
  %s
  public_key            = %q
  sudo                  = true

  timeouts {
    create = "3m"
  }
}
`, hclList(c.generatedTargets), c.generatedDuration, generatedCA, c.givenReason, hclList(c.givenTargets), givenCA, c.givenPublicKey)
	if len(c.broken) > 0 {
		s += fmt.Sprintf(`
resource "passport_access_request" "broken" {
  reason                = "INC-102 acceptance test: one target is down"
  targets               = %s
  %s
}
`, hclList(c.broken), givenCA)
	}
	return s
}

// loginCredentials is what a person holds after apply: a key, a certificate,
// and the user it names.
type loginCredentials struct {
	user   string
	signer ssh.Signer
}

func credentialsOf(a map[string]string, key ssh.Signer) (loginCredentials, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(a["certificate"]))
	if err != nil {
		return loginCredentials{}, fmt.Errorf("certificate: %w", err)
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return loginCredentials{}, fmt.Errorf("certificate is a %s, not a certificate", pub.Type())
	}
	if key == nil {
		if key, err = ssh.ParsePrivateKey([]byte(a["private_key"])); err != nil {
			return loginCredentials{}, fmt.Errorf("private_key: %w", err)
		}
	}
	signer, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		return loginCredentials{}, err
	}
	return loginCredentials{user: a["username"], signer: signer}, nil
}

// run logs in to host over SSH and runs command, returning its output.
func (c loginCredentials) run(h *sandbox.Host, command string) (string, error) {
	client, err := ssh.Dial("tcp", h.SSHAddr(), &ssh.ClientConfig{
		User:            c.user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(c.signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", err
	}
	defer session.Close()
	out, err := session.CombinedOutput(command)
	return strings.TrimSpace(string(out)), err
}

// checkLogin checks that c logs in to h as its user, and that sudo works
// exactly when wantSudo.
func (c loginCredentials) checkLogin(h *sandbox.Host, wantSudo bool) error {
	out, err := c.run(h, "id -un")
	if err != nil {
		return fmt.Errorf("%s cannot log in to %s: %w", c.user, h.Info().InstanceID, err)
	}
	if out != c.user {
		return fmt.Errorf("logged in to %s as %q, want %q", h.Info().InstanceID, out, c.user)
	}
	_, err = c.run(h, "sudo -n true")
	if hasSudo := err == nil; hasSudo != wantSudo {
		return fmt.Errorf("%s on %s: sudo works = %v, want %v", c.user, h.Info().InstanceID, hasSudo, wantSudo)
	}
	return nil
}

// checkRefused checks that c can no longer log in to h and that its user
// is gone from h.
func (c loginCredentials) checkRefused(h *sandbox.Host) error {
	if _, err := c.run(h, "true"); err == nil {
		return fmt.Errorf("%s still logs in to %s", c.user, h.Info().InstanceID)
	}
	if hostHasUser(h, c.user) {
		return fmt.Errorf("user %s is still on %s", c.user, h.Info().InstanceID)
	}
	return nil
}

func hostHasUser(h *sandbox.Host, user string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: "id -u -- '" + user + "'"})
	return err != nil || res.ExitCode == 0
}

// passportUsers lists the users on h whose names start with the default
// prefix.
func passportUsers(t *testing.T, h *sandbox.Host) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: "getent passwd | cut -d: -f1 | grep '^pp-' || true"})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("listing users on %s: %v (exit %d)", h.Info().InstanceID, err, res.ExitCode)
	}
	return strings.Fields(string(res.Stdout))
}

// TestAccAccessRequest walks two requests on two sandbox hosts through
// grant, extension, target changes, replacement, the end of the window,
// a target that is down, and destroy, judging each step by SSH logins,
// directly and through the Passport service as carol (admins: staging and
// production, with sudo; ops: a ticket in the reason).
func TestAccAccessRequest(t *testing.T) {
	runModes(t, []accMode{direct, serviceCarol}, testAccessRequest)
}

func testAccessRequest(t *testing.T, mode accMode) {
	l := startAccLabIn(t, lab.Options{Hosts: 2}, mode)
	h1, h2 := l.Hosts[0], l.Hosts[1]
	id1, id2 := h1.Info().InstanceID, h2.Info().InstanceID

	_, userKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	userSigner, err := ssh.NewSignerFromKey(userKey)
	if err != nil {
		t.Fatal(err)
	}
	cfg := requestConfig{
		service:           mode.service(),
		generatedDuration: "1h",
		generatedTargets:  []string{id1},
		givenTargets:      []string{id1, id2},
		givenReason:       "INC-101 acceptance test: my own key, with sudo",
		givenPublicKey:    string(ssh.MarshalAuthorizedKey(userSigner.PublicKey())),
	}
	step := func(change func(*requestConfig)) string {
		change(&cfg)
		return l.config(cfg.String())
	}

	// What each step saw, for the steps after it.
	var generated, given, oldGiven loginCredentials
	var ledgerID string
	capture := func(s *terraform.State) error {
		a, err := attributes(s, generatedAddr)
		if err != nil {
			return err
		}
		if generated, err = credentialsOf(a, nil); err != nil {
			return fmt.Errorf("%s: %w", generatedAddr, err)
		}
		if a, err = attributes(s, givenAddr); err != nil {
			return err
		}
		given, err = credentialsOf(a, userSigner)
		return err
	}
	both := func(check func(h *sandbox.Host) error) error {
		return errors.Join(check(h1), check(h2))
	}

	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: append([]resource.TestStep{
			{
				Config: step(func(*requestConfig) {}),
				Check: resource.ComposeAggregateTestCheckFunc(
					capture,
					resource.TestCheckResourceAttr(generatedAddr, "active", "true"),
					resource.TestCheckResourceAttr(generatedAddr, "target_status."+id1, "active"),
					resource.TestCheckResourceAttr(generatedAddr, "target_addresses."+id1, h1.Info().IPAddress),
					resource.TestCheckResourceAttr(givenAddr, "target_status."+id2, "active"),
					resource.TestMatchResourceAttr(generatedAddr, "id", regexp.MustCompile(`^ar-[0-9a-f]{16}$`)),
					resource.TestMatchResourceAttr(generatedAddr, "username", regexp.MustCompile(`^pp-[a-z0-9]{10,17}$`)),
					resource.TestCheckResourceAttr(generatedAddr, "requester", mode.requester()),
					resource.TestCheckResourceAttrSet(generatedAddr, "private_key"),
					resource.TestCheckNoResourceAttr(givenAddr, "private_key"),
					resource.TestCheckResourceAttr(givenAddr, "sudo", "true"),
					func(s *terraform.State) error {
						a, _ := attributes(s, generatedAddr)
						want := fmt.Sprintf("ssh -i %[1]s.key -o CertificateFile=%[1]s-cert.pub %[2]s@%[3]s", a["id"], a["username"], h1.Info().IPAddress)
						if got := a["ssh_commands."+id1]; got != want {
							return fmt.Errorf("ssh_commands[%s] = %q, want %q", id1, got, want)
						}
						if got, want := a["passport_commands."+id1], "passport ssh "+id1; got != want {
							return fmt.Errorf("passport_commands[%s] = %q, want %q", id1, got, want)
						}
						for _, want := range []string{"Host " + id1, "User " + a["username"], "ProxyCommand passport proxy %h %p",
							"IdentityFile ~/.config/passport/requests/" + a["id"] + "/key", "CertificateFile ~/.config/passport/requests/" + a["id"] + "/key-cert.pub"} {
							if !strings.Contains(a["ssh_config"], want) {
								return fmt.Errorf("ssh_config lacks %q:\n%s", want, a["ssh_config"])
							}
						}
						issued, _ := time.Parse(time.RFC3339, a["issued_at"])
						expires, _ := time.Parse(time.RFC3339, a["expires_at"])
						if expires.Sub(issued) != time.Hour {
							return fmt.Errorf("window %s to %s is not 1h", a["issued_at"], a["expires_at"])
						}
						return nil
					},
					func(*terraform.State) error {
						return errors.Join(generated.checkLogin(h1, false), generated.checkRefused(h2),
							given.checkLogin(h1, true), given.checkLogin(h2, true))
					},
					// Each request is signed by the CA it names.
					func(s *terraform.State) error {
						g, _ := attributes(s, generatedAddr)
						o, _ := attributes(s, givenAddr)
						if signedBy(g["certificate"]) == signedBy(o["certificate"]) {
							return fmt.Errorf("both requests are signed by %s, want two CAs", signedBy(g["certificate"]))
						}
						return nil
					},
					func(s *terraform.State) error {
						a, _ := attributes(s, generatedAddr)
						return runSSHCommand(t, a, id1)
					},
					func(s *terraform.State) error {
						a, _ := attributes(s, generatedAddr)
						ledgerID = a["id"]
						return checkLedger(t, ledgerID, ledger.Active, ledger.ActionRequested, ledger.ActionProvisioned)
					},
				),
			},
			{
				// A longer window is an in-place update with a new
				// certificate for the same user.
				Config: step(func(c *requestConfig) { c.generatedDuration = "2h" }),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(generatedAddr, plancheck.ResourceActionUpdate),
					plancheck.ExpectResourceAction(givenAddr, plancheck.ResourceActionNoop),
				}},
				Check: func(s *terraform.State) error {
					before := generated.user
					if err := capture(s); err != nil {
						return err
					}
					a, _ := attributes(s, generatedAddr)
					issued, _ := time.Parse(time.RFC3339, a["issued_at"])
					expires, _ := time.Parse(time.RFC3339, a["expires_at"])
					if generated.user != before || expires.Sub(issued) != 2*time.Hour {
						return fmt.Errorf("after the extension: user %s (was %s), window %s to %s", generated.user, before, a["issued_at"], a["expires_at"])
					}
					return generated.checkLogin(h1, false)
				},
			},
			{
				// Adding a target provisions the same user there.
				Config: step(func(c *requestConfig) { c.generatedTargets = []string{id1, id2} }),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(generatedAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr(generatedAddr, "target_status."+id2, "active"),
					resource.TestCheckResourceAttr(generatedAddr, "target_addresses."+id2, h2.Info().IPAddress),
					func(s *terraform.State) error {
						if err := capture(s); err != nil {
							return err
						}
						return both(func(h *sandbox.Host) error { return generated.checkLogin(h, false) })
					},
				),
			},
			{
				// Removing a target revokes it there and nowhere else.
				Config: step(func(c *requestConfig) { c.generatedTargets = []string{id2} }),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(generatedAddr, plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckNoResourceAttr(generatedAddr, "target_status."+id1),
					resource.TestCheckNoResourceAttr(generatedAddr, "ssh_commands."+id1),
					func(*terraform.State) error {
						return errors.Join(generated.checkRefused(h1), generated.checkLogin(h2, false), given.checkLogin(h1, true))
					},
				),
			},
			{
				// A new reason is a new request: a new user, and the old
				// one is gone.
				PreConfig: func() { oldGiven = given },
				Config:    step(func(c *requestConfig) { c.givenReason = "INC-103 acceptance test: a different reason" }),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(givenAddr, plancheck.ResourceActionReplace),
					plancheck.ExpectResourceAction(generatedAddr, plancheck.ResourceActionNoop),
				}},
				Check: func(s *terraform.State) error {
					if err := capture(s); err != nil {
						return err
					}
					if given.user == oldGiven.user {
						return fmt.Errorf("the replacement reuses user %s", given.user)
					}
					return both(func(h *sandbox.Host) error {
						return errors.Join(oldGiven.checkRefused(h), given.checkLogin(h, true))
					})
				},
			},
			{
				// The window ends with nothing applied: the plan replaces
				// both requests rather than failing. Plans do not store
				// the state they refresh, so the clock can go back after.
				PreConfig:          func() { l.clock.Advance(3 * time.Hour) },
				Config:             step(func(*requestConfig) {}),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks:   resource.ConfigPlanChecks{PostApplyPostRefresh: windowEndedPlan(mode)},
			},
			{
				// A target that is down fails the request, naming it,
				// before any host is touched.
				PreConfig: func() {
					l.clock.Advance(-3 * time.Hour)
					if err := h2.Stop(); err != nil {
						t.Fatal(err)
					}
				},
				Config:      step(func(c *requestConfig) { c.broken = []string{id1, id2} }),
				ExpectError: regexp.MustCompile(regexp.QuoteMeta(id2)),
			},
			{
				PreConfig: func() {
					if users := passportUsers(t, h1); !sameUsers(users, given.user) {
						t.Errorf("after the failed request, %s has users %v, want only %s", id1, users, given.user)
					}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := h2.Start(ctx); err != nil {
						t.Fatal(err)
					}
				},
				Config: step(func(c *requestConfig) { c.broken = nil }),
				Check: func(*terraform.State) error {
					return errors.Join(generated.checkLogin(h2, false), given.checkLogin(h1, true), given.checkLogin(h2, true))
				},
			},
			{
				// The user vanishes from a host behind Terraform's back:
				// the plan replaces the request, it does not fail.
				PreConfig: func() {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					defer cancel()
					res, err := h1.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: "pkill -KILL -u '" + given.user + "'; userdel -r '" + given.user + "'"})
					if err != nil || res.ExitCode != 0 {
						t.Fatalf("removing %s from %s: %v (exit %d: %s)", given.user, id1, err, res.ExitCode, res.Stderr)
					}
				},
				Config:             step(func(*requestConfig) {}),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
				ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(givenAddr, plancheck.ResourceActionReplace),
					plancheck.ExpectResourceAction(generatedAddr, plancheck.ResourceActionNoop),
				}},
			},
		}, endedAtTheService(t, l, &ledgerID, step(func(*requestConfig) {}))...),
		CheckDestroy: func(*terraform.State) error {
			return errors.Join(both(func(h *sandbox.Host) error {
				return errors.Join(generated.checkRefused(h), given.checkRefused(h))
			}), checkLedger(t, ledgerID, ledger.Revoked, ledger.ActionRevoked))
		},
	})
}

// endedAtTheService is, in service mode, a step where the request with id
// is ended at the service behind Terraform's back (by its requester here;
// an administrator or the reconciler alike): the plan replaces it rather
// than keep a request that no longer stands. Direct mode has no such step.
func endedAtTheService(t *testing.T, l *accLab, id *string, config string) []resource.TestStep {
	if !l.mode.service() {
		return nil
	}
	return []resource.TestStep{{
		PreConfig: func() {
			c, err := client.Open(context.Background(), l.server, client.SignIn{Options: client.Options{CAFile: l.serverCA}})
			if err != nil {
				t.Fatal(err)
			}
			if ended, err := c.End(context.Background(), *id); err != nil || ended.State != string(ledger.Revoked) {
				t.Fatalf("ending %s at the service: %+v, %v", *id, ended.State, err)
			}
		},
		Config:             config,
		PlanOnly:           true,
		ExpectNonEmptyPlan: true,
		ConfigPlanChecks: resource.ConfigPlanChecks{PostApplyPostRefresh: []plancheck.PlanCheck{
			plancheck.ExpectResourceAction(generatedAddr, plancheck.ResourceActionReplace),
		}},
	}}
}

// windowEndedPlan is the plan once both requests' window has ended: both
// replaced, and in direct mode their CAs left alone.
func windowEndedPlan(mode accMode) []plancheck.PlanCheck {
	checks := []plancheck.PlanCheck{
		plancheck.ExpectResourceAction(generatedAddr, plancheck.ResourceActionReplace),
		plancheck.ExpectResourceAction(givenAddr, plancheck.ResourceActionReplace),
	}
	if !mode.service() {
		checks = append(checks, plancheck.ExpectResourceAction("passport_certificate_authority.kms", plancheck.ResourceActionNoop))
	}
	return checks
}

// signedBy is the fingerprint of the CA that signed a certificate.
func signedBy(certificate string) string {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(certificate))
	if err != nil {
		return "unparsable: " + err.Error()
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return "not a certificate"
	}
	return ssh.FingerprintSHA256(cert.SignatureKey)
}

// checkLedger checks what the provider recorded in the test's ledger
// (PASSPORT_LEDGER): the grant's state, that the audit trail has the
// actions for it, and that the trail's chain verifies.
func checkLedger(t *testing.T, id string, state ledger.State, actions ...ledger.Action) error {
	ctx := context.Background()
	book, err := ledger.Open(ctx, os.Getenv("PASSPORT_LEDGER"), ledger.Options{})
	if err != nil {
		return err
	}
	defer book.Close()
	g, err := book.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("the ledger has no grant %s: %w", id, err)
	}
	if g.State != state {
		return fmt.Errorf("ledger: grant %s is %s, want %s", id, g.State, state)
	}
	events, err := book.Events(ctx, ledger.Filter{GrantID: id})
	if err != nil {
		return err
	}
	seen := map[ledger.Action]bool{}
	for _, e := range events {
		seen[e.Action] = true
	}
	for _, a := range actions {
		if !seen[a] {
			return fmt.Errorf("ledger: grant %s has no %q event among %d", id, a, len(events))
		}
	}
	return book.Verify(ctx)
}

// runSSHCommand runs the ssh_commands entry for target with OpenSSH, the
// key and certificate saved under the names it expects, and checks that it
// logs in as the request's user.
func runSSHCommand(t *testing.T, a map[string]string, target string) error {
	dir := t.TempDir()
	id := a["id"]
	if err := os.WriteFile(filepath.Join(dir, id+".key"), []byte(a["private_key"]), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, id+"-cert.pub"), []byte(a["certificate"]+"\n"), 0o600); err != nil {
		return err
	}
	command := strings.Fields(a["ssh_commands."+target])
	if len(command) == 0 || command[0] != "ssh" {
		return fmt.Errorf("ssh_commands[%s] = %q is not an ssh command", target, a["ssh_commands."+target])
	}
	// Only what keeps a test run from reading or writing the machine's own
	// SSH configuration is added.
	args := append([]string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentityAgent=none",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10"}, command[1:]...)
	cmd := exec.Command("ssh", append(args, "id", "-un")...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	if got := strings.TrimSpace(string(out)); got != a["username"] {
		return fmt.Errorf("OpenSSH logged in as %q, want %q", got, a["username"])
	}
	return nil
}

func sameUsers(got []string, want ...string) bool {
	slices.Sort(got)
	slices.Sort(want)
	return slices.Equal(got, want)
}

func TestInactiveReason(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		status map[string]string
		expiry string
		want   string
	}{
		{"window ended", map[string]string{"i-0123456789abcdef0": "active"}, "2026-11-24T11:00:00Z", "The access window ended at 2026-11-24T11:00:00Z."},
		{"user gone", map[string]string{"i-0123456789abcdef0": "missing", "i-0123456789abcdef1": "active"}, "2026-11-24T13:00:00Z", "User pp-x is gone from i-0123456789abcdef0"},
		{"ended elsewhere", map[string]string{"i-0123456789abcdef0": "revoked", "i-0123456789abcdef1": "revoked"}, "2026-11-24T13:00:00Z", "The request was ended outside this configuration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := accessRequestModel{Username: types.StringValue("pp-x"), ExpiresAt: types.StringValue(tc.expiry), TargetStatus: stringMap(tc.status)}
			if got := inactiveReason(context.Background(), m, now); !strings.HasPrefix(got, tc.want) {
				t.Errorf("inactiveReason = %q, want it to start with %q", got, tc.want)
			}
		})
	}
}

// TestAccAccessRequestRefusals checks that a bad request fails at plan
// time, naming the attribute, and that import says why it cannot work; in
// both modes, and in each the refusals only it has: direct mode needs a
// signer, service mode never sends one and owns its CAs and settings.
func TestAccAccessRequestRefusals(t *testing.T) {
	runModes(t, []accMode{direct, serviceAlice}, testAccessRequestRefusals)
}

func testAccessRequestRefusals(t *testing.T, mode accMode) {
	l := startAccLabIn(t, lab.Options{}, mode)
	const signer = "kms:arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
	request := func(attrs string) string {
		return l.config(`
resource "passport_access_request" "bad" {
` + attrs + `
}`)
	}
	valid := map[string]string{
		"reason":                `"INC-1 a valid reason for access"`,
		"targets":               `["i-0123456789abcdef0"]`,
		"certificate_authority": fmt.Sprintf("%q", signer),
	}
	if mode.service() {
		valid["certificate_authority"] = `"lab"`
	}
	with := func(name, value string) string {
		var b strings.Builder
		for _, k := range []string{"reason", "targets", "certificate_authority", "duration", "public_key", "break_glass"} {
			v := valid[k]
			if k == name {
				v = value
			}
			if v != "" {
				fmt.Fprintf(&b, "  %s = %s\n", k, v)
			}
		}
		return request(b.String())
	}
	type refusal struct{ attr, value, want string }
	refusals := []refusal{
		{"reason", `"too short"`, `reason is 9 characters long`},
		{"reason", `"line one\nline two is here"`, `non-printable character U\+000A`},
		// A right-to-left override makes a reason read otherwise than it
		// is stored: the core's rule, applied at plan time.
		{"reason", `"INC-1234 \u202eesrever ni"`, `non-printable character U\+202E`},
		{"targets", `[]`, `targets set must contain at least 1`},
		{"targets", `["i-0123456789abcdef0", "web-1"]`, `must be an instance id`},
		{"duration", `"13h"`, `longer than the 12h hard cap`},
		{"duration", `"30s"`, `too short`},
		{"duration", `"a day"`, `not a duration`},
		{"public_key", `"ssh-rsa AAAA; rm -rf /"`, `Invalid public key`},
	}
	if mode.service() {
		// A signer may be a private key: it never goes to the service.
		refusals = append(refusals, refusal{"certificate_authority", fmt.Sprintf("%q", signer), `is not sent to the service`})
	} else {
		refusals = append(refusals,
			refusal{"certificate_authority", `"ca-0123456789abcdef0123456789abcdef"`, `must be the signer attribute`},
			refusal{"certificate_authority", "", `certificate_authority is required without server`},
			// Only the service announces break-glass and follows its review up.
			refusal{"break_glass", "true", `break_glass = true is for the Passport service`})
	}
	var steps []resource.TestStep
	for _, tc := range refusals {
		steps = append(steps, resource.TestStep{
			Config:      with(tc.attr, tc.value),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)` + tc.attr + `.*` + tc.want + `|` + tc.want + `.*` + tc.attr),
		})
	}
	providerWith := func(attr string) string {
		return strings.Replace(with("", ""), "provider \"passport\" {", "provider \"passport\" {\n  "+attr, 1)
	}
	if mode.service() {
		steps = append(steps, resource.TestStep{
			// What the service decides is refused, not silently ignored.
			Config:      providerWith(`policy_source = "file:///etc/passport/mine.cedar"`),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)Not used with server.*policy_source is the Passport service's own policy`),
		}, resource.TestStep{
			Config: strings.Replace(with("", ""), l.server, "http://passport.example.com", 1),
			// Tokens and certificates would cross the network in clear.
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`(?s)server http://passport.example.com uses plain http`),
		}, resource.TestStep{
			Config: l.config(`
resource "passport_certificate_authority" "mine" {
  name          = "mine"
  key_algorithm = "ed25519"
  key_store     = "state"
}`),
			PlanOnly:    true,
			ExpectError: regexp.MustCompile(`The Passport service owns its certificate authorities`),
		})
	} else {
		steps = append(steps, resource.TestStep{
			Config: providerWith(`username_prefix = "Root$(id)"`),
			// The prefix is checked when the provider is configured, before
			// any plan of a request.
			ExpectError: regexp.MustCompile(`(?s)username_prefix "Root\$\(id\)" is invalid`),
		})
	}
	steps = append(steps, resource.TestStep{
		Config:        with("", ""),
		ResourceName:  "passport_access_request.bad",
		ImportState:   true,
		ImportStateId: "ar-0123456789abcdef",
		ExpectError:   regexp.MustCompile(`Cannot import an access request`),
	})
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: l.factories(), Steps: steps})
}

// TestGrantStateRoundTrip checks that what setGrant writes into the state
// is enough for grantFromState to give the access core back the same
// grant, since revoke and extend work from nothing else.
func TestGrantStateRoundTrip(t *testing.T) {
	ca, err := sshca.Generate(sshca.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	userKey, err := sshca.Generate(sshca.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	cert, err := ca.Sign(context.Background(), sshca.CertRequest{
		PublicKey: userKey.PublicKey(), Username: "pp-abcdefghij", KeyID: sshca.KeyID("ar-0123456789abcdef", "arn:aws:iam::123456789012:user/alice"),
		ValidAfter: issued, ValidBefore: issued.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	line := func(k ssh.PublicKey) string { return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n") }
	want := &access.Grant{
		ID: "ar-0123456789abcdef", Username: "pp-abcdefghij", Requester: "arn:aws:iam::123456789012:user/alice",
		Groups: []string{"ops", "oncall"}, Reason: "a reason for the round trip", Sudo: true,
		Targets: []access.Target{
			{InstanceID: "i-0123456789abcdef0", Platform: access.Linux, Status: access.Active, Address: "10.0.0.5"},
			{InstanceID: "i-0123456789abcdef1", Platform: access.Linux, Status: access.Failed, Address: "10.0.0.6"},
			{InstanceID: "i-0123456789abcdef2", Platform: access.Windows, Status: access.Active, Address: "10.0.0.7"},
			{InstanceID: "i-0123456789abcdef3", Platform: access.Windows, Status: access.Failed, Address: "10.0.0.8"},
		},
		Passwords: map[string]string{"i-0123456789abcdef2": "Kq7-Rm4!pT9x+Wb3_Hn8#Lc2Jd6e", "i-0123456789abcdef3": "undone-Ab3!"},
		IssuedAt:  issued, ExpiresAt: issued.Add(time.Hour),
		PublicKey: line(userKey.PublicKey()), PrivateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\n...\n",
		Certificate: line(cert), Serial: cert.Serial, CAPublicKey: line(ca.PublicKey()),
	}
	r := &accessRequestResource{data: &providerData{now: func() time.Time { return issued.Add(time.Minute) }}}
	m := accessRequestModel{Reason: types.StringValue(want.Reason), Sudo: types.BoolValue(true)}
	var diags diag.Diagnostics
	r.setGrant(context.Background(), &m, want, &diags)
	if diags.HasError() {
		t.Fatal(diags)
	}
	if !m.Active.ValueBool() {
		t.Error("a grant with an active target inside its window is not active")
	}
	if got := m.SSHCommands.Elements(); len(got) != 1 {
		t.Errorf("ssh_commands has %d entries, want one for the active Linux target only", len(got))
	}
	if got := m.TunnelCommands.Elements()["i-0123456789abcdef2"]; got == nil || got.String() != `"passport rdp i-0123456789abcdef2"` {
		t.Errorf("passport_commands for the Windows target is %v, want passport rdp", got)
	}
	if got := m.Passwords.Elements(); len(got) != 1 || got["i-0123456789abcdef2"] == nil {
		t.Errorf("passwords holds %v, want the active Windows target's only", got)
	}
	got, err := grantFromState(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	// Revoke needs no password: the state's copy is not read back.
	want.Passwords = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip changed the grant:\n got %+v\nwant %+v", got, want)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"1h", time.Hour, ""},
		{"90m", 90 * time.Minute, ""},
		{"12h", 12 * time.Hour, ""},
		{"1m", time.Minute, ""},
		{"12h0m1s", 0, "hard cap"},
		{"59s", 0, "too short"},
		{"-1h", 0, "too short"},
		{"", 0, "not a duration"},
		{"1d", 0, "not a duration"},
		{"1h; reboot", 0, "not a duration"},
	} {
		got, err := parseDuration(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseDuration(%q) error = %v, want one saying %q", tc.in, err, tc.err)
		}
	}
}

// TestAccServiceExample applies examples/service/main.tf as the registry
// docs show it, pointed at the lab's service, as the lab's requester
// machine: its targets, identity and request work together, and the
// generated key logs in to the staging host.
func TestAccServiceExample(t *testing.T) {
	l := startAccLabIn(t, lab.Options{Hosts: 1}, serviceMachine)
	example, err := os.ReadFile(filepath.Join("..", "..", "examples", "service", "main.tf"))
	if err != nil {
		t.Fatal(err)
	}
	// The test serves the provider itself, under the test framework's
	// address, so the example's own required_providers block goes.
	config, found := strings.CutPrefix(string(example[strings.Index(string(example), "terraform {"):]), "terraform {")
	if _, rest, ok := strings.Cut(config, "\n}\n"); ok && found {
		config = rest
	} else {
		t.Fatal("the example no longer starts with a terraform block")
	}
	config = strings.ReplaceAll(config, "https://passport.example.com", l.server)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{{
			Config: config,
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckOutput("requester", "machine "+lab.RequesterARN),
				func(s *terraform.State) error {
					a, err := attributes(s, "passport_access_request.deploy")
					if err != nil {
						return err
					}
					creds, err := credentialsOf(a, nil)
					if err != nil {
						return err
					}
					return creds.checkLogin(l.Hosts[0], false)
				},
			),
		}},
	})
}
