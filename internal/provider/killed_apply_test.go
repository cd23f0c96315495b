package provider

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// TestAccKilledApplyLeavesNothing: a real `terraform apply`, with the
// provider built as the binary Terraform runs, is killed with SIGKILL
// (terraform and the provider both) while it provisions: one host has the
// user, the other is still waiting for Passport's host lock. The command
// already sent goes on without them. After one reconcile pass, once the
// grant counts as stuck, no Passport user is left on either host and the
// grant is closed.
func TestAccKilledApplyLeavesNothing(t *testing.T) {
	l := startAccLab(t, 2)
	fast, held := l.Hosts[0], l.Hosts[1]
	terraform := newTerraformCLI(t)
	terraform.configure(t, l.config(fmt.Sprintf(`
resource "passport_certificate_authority" "ca" {
  name          = "killed"
  key_algorithm = "ed25519"
  key_store     = "state"
}
resource "passport_access_request" "r" {
  reason                = "INC-6: an apply that is killed"
  duration              = "1h"
  targets               = [%q, %q]
  certificate_authority = passport_certificate_authority.ca.signer
}
`, fast.Info().InstanceID, held.Info().InstanceID)))

	// Another Passport program holds the lock on one host: its provision
	// waits there (up to two minutes) while the other host's finishes.
	onSandbox(t, held, "setsid flock "+hostscript.LockFile+" sleep 601 >/dev/null 2>&1 < /dev/null &")

	apply := terraform.command("apply", "-auto-approve")
	apply.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var output strings.Builder
	apply.Stdout, apply.Stderr = &output, &output
	if err := apply.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			syscall.Kill(-apply.Process.Pid, syscall.SIGKILL)
			apply.Wait()
		}
	}()
	waitUntil(t, 2*time.Minute, "the first host to be provisioned", func() bool {
		return len(passportUsers(t, fast)) == 1
	})
	// The whole process group: terraform and the provider it started.
	if err := syscall.Kill(-apply.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	apply.Wait()
	if strings.Contains(output.String(), "Apply complete") {
		t.Fatalf("the apply finished before it was killed:\n%s", output.String())
	}
	if out, err := exec.Command("pgrep", "-f", filepath.Join(terraform.dir, "bin")).Output(); err == nil {
		t.Fatalf("the provider outlived the kill: pids %s", out)
	}

	book, err := ledger.Open(context.Background(), os.Getenv("PASSPORT_LEDGER"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	left, err := book.List(context.Background(), ledger.Provisioning)
	if err != nil || len(left) != 1 {
		t.Fatalf("after the kill the ledger holds %d grants in provisioning (%v); want the killed one", len(left), err)
	}
	user := left[0].Username

	// The lock is let go; the command SSM already handed the host runs on,
	// with nobody left to undo it.
	onSandbox(t, held, "pkill -f 'sleep 601' || true")
	waitUntil(t, time.Minute, "the held host's provision to finish", func() bool {
		return len(passportUsers(t, held)) == 1
	})

	// A pass before the grant counts as stuck leaves it alone: the apply
	// could still be running.
	reconcileOnce(t, l)
	if got, _ := book.Get(context.Background(), left[0].ID); got.State != ledger.Provisioning {
		t.Fatalf("a pass right after the kill moved the grant to %s", got.State)
	}
	l.clock.Advance(16 * time.Minute)
	reconcileOnce(t, l)
	for _, h := range []*sandbox.Host{fast, held} {
		if users := passportUsers(t, h); len(users) != 0 {
			t.Errorf("%s still has %v after the pass", h.Info().InstanceID, users)
		}
	}
	got, err := book.Get(context.Background(), left[0].ID)
	if err != nil || !got.State.Closed() {
		t.Errorf("the killed apply's grant for %s is %s (%v) after the pass; want it closed", user, got.State, err)
	}
}

// terraformCLI is the terraform command line with the provider built as
// the binary Terraform runs outside tests (its own process), found through
// a CLI configuration whose dev_overrides point at it.
type terraformCLI struct {
	tf, rc, work string
	dir          string // the test's directory: the binary is in dir/bin
}

func newTerraformCLI(t *testing.T) *terraformCLI {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds the provider binary and runs terraform")
	}
	c := &terraformCLI{tf: terraformPath(t), dir: t.TempDir()}
	build := exec.Command("go", "build", "-o", filepath.Join(c.dir, "bin", "terraform-provider-passport"), "github.com/passport-access/terraform-provider-passport")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the provider: %v\n%s", err, out)
	}
	c.rc = filepath.Join(c.dir, "terraformrc")
	if err := os.WriteFile(c.rc, []byte(fmt.Sprintf("provider_installation {\n  dev_overrides {\n    %q = %q\n  }\n  direct {}\n}\n",
		"passport-access/passport", filepath.Join(c.dir, "bin"))), 0o600); err != nil {
		t.Fatal(err)
	}
	c.work = filepath.Join(c.dir, "work")
	if err := os.Mkdir(c.work, 0o700); err != nil {
		t.Fatal(err)
	}
	return c
}

// configure makes config the working directory's configuration.
func (c *terraformCLI) configure(t *testing.T, config string) {
	t.Helper()
	config = `
terraform {
  required_providers {
    passport = { source = "passport-access/passport" }
  }
}
` + config
	if err := os.WriteFile(filepath.Join(c.work, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
}

// command is a terraform command run in the working directory.
func (c *terraformCLI) command(args ...string) *exec.Cmd {
	cmd := exec.Command(c.tf, append(args, "-no-color", "-input=false")...)
	cmd.Dir = c.work
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+c.rc, "TF_IN_AUTOMATION=1")
	return cmd
}

// terraformPath is the terraform the acceptance tests run.
func terraformPath(t *testing.T) string {
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("no terraform CLI")
	}
	return p
}

// onSandbox runs a test's own shell commands as root on h.
func onSandbox(t *testing.T, h *sandbox.Host, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := h.Run(ctx, node.Script{Document: "AWS-RunShellScript", Source: script})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%q on %s: %v (exit %d: %s)", script, h.Info().InstanceID, err, res.ExitCode, res.Stderr)
	}
}

func waitUntil(t *testing.T, limit time.Duration, what string, done func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting %s for %s", limit, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
