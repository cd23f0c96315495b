package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// labUp starts `passport lab up` in a directory of its own and waits
// until it says it is up.
func labUp(t *testing.T, hosts int, flags ...string) (*exec.Cmd, string, *output) {
	t.Helper()
	if err := sandbox.Available(); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "lab")
	if err != nil {
		t.Fatal(err)
	}
	cmd, stdout := labUpIn(t, dir, hosts, flags...)
	return cmd, dir, stdout
}

// labUpIn starts `passport lab up` in dir and waits for the last line it
// prints, which comes after the lab and its lab.json are complete.
func labUpIn(t *testing.T, dir string, hosts int, flags ...string) (*exec.Cmd, *output) {
	t.Helper()
	t.Cleanup(func() { lab.Down(dir) })
	cmd, stdout, stderr := passport(t, append([]string{"lab", "up", "--hosts", strconv.Itoa(hosts), "--dir", dir}, flags...)...)
	waitFor(t, stdout, stderr, regexp.MustCompile(`(Press Ctrl-C to stop the lab)`))
	return cmd, stdout
}

func running(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	// A zombie is gone for our purposes: nothing runs in it.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// TestLabUpPrintsHowToUseItAndCtrlCCleansUp: what a person sees, and that
// Ctrl-C leaves nothing behind.
func TestLabUpPrintsHowToUseItAndCtrlCCleansUp(t *testing.T) {
	cmd, dir, out := labUp(t, 2, "--service=false")
	s, err := lab.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export AWS_ENDPOINT_URL=" + s.Endpoint, "export AWS_ENDPOINT_URL_SSM=" + s.Endpoint, "export AWS_DEFAULT_REGION=us-east-1", "export AWS_ACCESS_KEY_ID=" + s.AccessKeyID, "export AWS_SECRET_ACCESS_KEY=", "export AWS_REGION=us-east-1", filepath.Join(dir, "env.sh"),
		"alice    password alice-lab", lab.PolicyParameter} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("lab up output lacks %q:\n%s", want, out)
		}
	}
	if len(s.Hosts) != 2 {
		t.Fatalf("lab.json lists %d hosts, want 2", len(s.Hosts))
	}
	for _, h := range s.Hosts {
		if !strings.Contains(out.String(), h.InstanceID) || !strings.Contains(out.String(), h.SSH) {
			t.Errorf("lab up output does not show host %s at %s", h.InstanceID, h.SSH)
		}
		if !running(h.PID) {
			t.Errorf("host %s (pid %d) is not running", h.InstanceID, h.PID)
		}
	}

	interrupt(t, cmd, out)
	for _, h := range s.Hosts {
		if running(h.PID) {
			t.Errorf("host %s (pid %d) still runs after Ctrl-C", h.InstanceID, h.PID)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Ctrl-C left the lab directory %s", dir)
	}
}

// TestLabDownAfterKill: a lab killed with SIGKILL cannot clean up; lab
// down must, and a second lab up in the same directory must work.
func TestLabDownAfterKill(t *testing.T) {
	cmd, dir, _ := labUp(t, 1, "--service=false")
	s, err := lab.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Process.Kill()
	cmd.Wait()

	stdout, stderr, err := passportRun(t, "lab", "down", "--dir", dir)
	if err != nil {
		t.Fatalf("lab down: %v\n%s%s", err, stdout, stderr)
	}
	for _, h := range s.Hosts {
		if running(h.PID) {
			t.Errorf("host %s (pid %d) still runs after lab down", h.InstanceID, h.PID)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lab down left %s", dir)
	}
	if !strings.Contains(stdout, "nothing is left running") {
		t.Errorf("lab down said %q", stdout)
	}

	// Nothing of the killed lab stands in the way of the next one.
	again, out := labUpIn(t, dir, 1)
	s, err = lab.ReadState(dir)
	if err != nil {
		t.Fatalf("the second lab up in %s: %v", dir, err)
	}
	if len(s.Hosts) != 1 || !running(s.Hosts[0].PID) || !strings.Contains(out.String(), s.Hosts[0].InstanceID) {
		t.Errorf("the second lab up in %s: hosts %+v, output:\n%s", dir, s.Hosts, out)
	}
	interrupt(t, again, out)
}

func TestUnknownCommandSaysSo(t *testing.T) {
	_, stderr, err := passportRun(t, "lab", "sideways")
	if err == nil {
		t.Fatal("passport lab sideways succeeded")
	}
	_, stderr, err = passportRun(t, "lab", "up", "--hosts", "-1", "--dir", t.TempDir())
	if err == nil || !strings.Contains(stderr, "must not be negative") {
		t.Errorf("lab up --hosts -1: err %v, stderr %q", err, stderr)
	}
}

// labEnv waits until the lab in dir exports name in env.sh, and returns
// everything env.sh exports.
func labEnv(t *testing.T, dir, name string) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		b, _ := os.ReadFile(filepath.Join(dir, "env.sh"))
		env := map[string]string{}
		for _, line := range strings.Split(string(b), "\n") {
			if kv, ok := strings.CutPrefix(line, "export "); ok {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = strings.Trim(v, "'")
			}
		}
		if env[name] != "" {
			return env
		}
		if time.Now().After(deadline) {
			t.Fatalf("env.sh never exported %s:\n%s", name, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLabUpRunsTheService: the lab's Passport service answers over TLS
// from the lab's CA, and the lab's requester identity signs in to it with
// its AWS identity.
func TestLabUpRunsTheService(t *testing.T) {
	cmd, dir, _ := labUp(t, 1, "--service")
	env := labEnv(t, dir, client.EnvServer)
	ctx := context.Background()
	if !strings.HasPrefix(env[client.EnvServer], "https://127.0.0.1:") {
		t.Fatalf("PASSPORT_SERVER=%q, want https on loopback", env[client.EnvServer])
	}
	untrusted, err := client.New(env[client.EnvServer], client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusted.Health(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client that does not trust the lab's CA: %v; want a certificate error", err)
	}
	c, err := client.New(env[client.EnvServer], client.Options{CAFile: env[client.EnvServerCA]})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := c.Health(ctx); err != nil || h.Status != "ok" {
		t.Fatalf("health: %+v, %v", h, err)
	}
	requester := aws.Config{Region: env["AWS_REGION"], BaseEndpoint: aws.String(env["AWS_ENDPOINT_URL"]),
		Credentials: credentials.NewStaticCredentialsProvider(env["PASSPORT_LAB_REQUESTER_ACCESS_KEY_ID"], env["PASSPORT_LAB_REQUESTER_SECRET_ACCESS_KEY"], "")}
	info, err := c.AWSLoginInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	login, err := awsidentity.Sign(ctx, requester, info)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.AWSLogin(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Principal.Kind != "machine" || tok.Principal.Name != env["PASSPORT_LAB_REQUESTER_ARN"] {
		t.Errorf("signed in as %+v, want the requester machine", tok.Principal)
	}
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("lab up after Ctrl-C: %v", err)
	}
}
