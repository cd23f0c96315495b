package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ec2sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

func startLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	if opts.Hosts > 0 {
		if err := sandbox.Available(); err != nil {
			t.Skip(err)
		}
	}
	if opts.Dir == "" {
		// Short: host agent sockets live under it and unix socket paths
		// are limited to 107 bytes.
		dir, err := os.MkdirTemp("", "lab")
		if err != nil {
			t.Fatal(err)
		}
		opts.Dir = dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// ssmClient is the real SDK client, configured only by the lab's
// environment, as a person's shell would be after `. env.sh`.
func ssmClient(l *Lab, secret string) *ssmsdk.Client {
	return ssmsdk.New(ssmsdk.Options{
		Region:       l.Region,
		BaseEndpoint: aws.String(l.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(l.AccessKeyID, secret, ""),
	})
}

// run sends a shell script to one instance and waits for its result.
func run(t *testing.T, c *ssmsdk.Client, instanceID, script string) *ssmsdk.GetCommandInvocationOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sent, err := c.SendCommand(ctx, &ssmsdk.SendCommandInput{
		DocumentName: aws.String("AWS-RunShellScript"),
		InstanceIds:  []string{instanceID},
		Parameters:   map[string][]string{"commands": {script}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		out, err := c.GetCommandInvocation(ctx, &ssmsdk.GetCommandInvocationInput{CommandId: sent.Command.CommandId, InstanceId: aws.String(instanceID)})
		var missing *types.InvocationDoesNotExist
		switch {
		case errors.As(err, &missing):
		case err != nil:
			t.Fatal(err)
		case out.Status != types.CommandInvocationStatusPending && out.Status != types.CommandInvocationStatusInProgress:
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("command on %s did not finish: %v", instanceID, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestRunCommandCreatesARealUser is the lab's reason to exist: the real SDK
// sends a script through the SSM API, a sandbox host runs it as root, and
// the user it created logs in over real SSH — on that host only.
func TestRunCommandCreatesARealUser(t *testing.T) {
	l := startLab(t, Options{Hosts: 2})
	c := ssmClient(l, l.SecretAccessKey)
	ctx := context.Background()

	info, err := c.DescribeInstanceInformation(ctx, &ssmsdk.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(info.InstanceInformationList) != 2 {
		t.Fatalf("DescribeInstanceInformation lists %d instances, want the lab's 2", len(info.InstanceInformationList))
	}
	for _, i := range info.InstanceInformationList {
		if i.PingStatus != types.PingStatusOnline || i.PlatformType != types.PlatformTypeLinux {
			t.Errorf("%s: PingStatus %s, PlatformType %s; want Online Linux", aws.ToString(i.InstanceId), i.PingStatus, i.PlatformType)
		}
	}

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.NewSignerFromKey(priv)
	sshPub, _ := ssh.NewPublicKey(pub)
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub)))
	host, other := l.Hosts[0], l.Hosts[1]
	out := run(t, c, host.Info().InstanceID, `set -e
useradd --create-home --shell /bin/sh labuser
mkdir -m 700 /home/labuser/.ssh
echo '`+key+`' > /home/labuser/.ssh/authorized_keys
chown -R labuser: /home/labuser/.ssh
hostname; echo to-stderr >&2; exit 0`)
	if out.Status != types.CommandInvocationStatusSuccess || out.ResponseCode != 0 {
		t.Fatalf("user creation: status %s, code %d, stderr %q", out.Status, out.ResponseCode, aws.ToString(out.StandardErrorContent))
	}
	if got := strings.TrimSpace(aws.ToString(out.StandardOutputContent)); got != host.Info().ComputerName {
		t.Errorf("stdout %q, want the host's name %q", got, host.Info().ComputerName)
	}
	if got := strings.TrimSpace(aws.ToString(out.StandardErrorContent)); got != "to-stderr" {
		t.Errorf("stderr %q, want to-stderr", got)
	}

	if got := sshRun(t, host.SSHAddr(), signer, "id -un"); got != "labuser" {
		t.Errorf("ssh id -un = %q, want labuser", got)
	}
	if out := run(t, c, other.Info().InstanceID, "id labuser"); out.ResponseCode == 0 {
		t.Errorf("labuser exists on the other host too")
	}
	if passwd, _ := os.ReadFile("/etc/passwd"); strings.Contains(string(passwd), "labuser:") {
		t.Errorf("labuser appeared in the machine's own /etc/passwd")
	}

	failed := run(t, c, host.Info().InstanceID, "echo partial; exit 7")
	if failed.Status != types.CommandInvocationStatusFailed || failed.ResponseCode != 7 {
		t.Errorf("exit 7: status %s, code %d; want Failed, 7", failed.Status, failed.ResponseCode)
	}
}

func sshRun(t *testing.T, addr string, signer ssh.Signer, cmd string) string {
	t.Helper()
	client, err := ssh.Dial("tcp", addr, &ssh.ClientConfig{
		User:            "labuser",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // a lab host's key is new every time
		Timeout:         10 * time.Second,
	})
	if err != nil {
		t.Fatalf("ssh to %s: %v", addr, err)
	}
	defer client.Close()
	s, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Output(cmd)
	if err != nil {
		t.Fatalf("ssh %s %q: %v", addr, cmd, err)
	}
	return strings.TrimSpace(string(b))
}

// TestWrongSecretIsRefused: the lab checks signatures the way AWS does.
func TestWrongSecretIsRefused(t *testing.T) {
	l := startLab(t, Options{ModelNodes: 1})
	_, err := ssmClient(l, "not-the-secret").DescribeInstanceInformation(context.Background(), &ssmsdk.DescribeInstanceInformationInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("a wrong secret got %v; want InvalidSignatureException", err)
	}
}

func TestStateFileAndDown(t *testing.T) {
	l := startLab(t, Options{ModelNodes: 3})
	s, err := ReadState(l.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Endpoint != l.Endpoint || s.AccessKeyID != l.AccessKeyID || s.ModelNodes != 3 || s.PID != os.Getpid() {
		t.Errorf("lab.json = %+v; does not describe the running lab", s)
	}
	fi, err := os.Stat(filepath.Join(l.Dir, "env.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("env.sh holds the lab's secret but has mode %v", fi.Mode().Perm())
	}
	if l.Close() != nil || dirExists(l.Dir) {
		t.Errorf("Close left %s behind", l.Dir)
	}
}

// TestRunningLabIsNotDisturbed: a lab.json naming a live process (here the
// test's parent) makes Start refuse the directory instead of killing it.
func TestRunningLabIsNotDisturbed(t *testing.T) {
	dir := t.TempDir()
	s := State{PID: os.Getppid(), PIDStart: startTime(os.Getppid())}
	b, _ := json.Marshal(s)
	if err := os.WriteFile(filepath.Join(dir, stateFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "already running") {
		t.Fatalf("Start in a running lab's directory: %v; want a refusal", err)
	}
	if !dirExists(filepath.Join(dir, stateFile)) {
		t.Error("the running lab's state file was removed")
	}
	// A stale lab.json (its process is gone) is cleaned up instead.
	s.PIDStart++
	b, _ = json.Marshal(s)
	os.WriteFile(filepath.Join(dir, stateFile), b, 0o600)
	l, err := Start(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatalf("Start over a stale lab.json: %v", err)
	}
	l.Close()
}

func dirExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestDownAfterKilledHostsLeavesNothing(t *testing.T) {
	l := startLab(t, Options{Hosts: 1})
	pid := l.Hosts[0].PID()
	dir := l.Dir
	// Down from "another process": it reads lab.json and ends the host's
	// init, as after a lab that was killed with SIGKILL.
	if err := Down(dir); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(pid, 0) == nil {
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); strings.HasPrefix(string(b), "passport-sandbox-init") {
			t.Errorf("host init %d still running after Down", pid)
		}
	}
	if dirExists(dir) {
		t.Errorf("Down left %s behind", dir)
	}
}

// TestLabPolicy: the policy a lab puts in Parameter Store is valid Cedar
// for Passport's schema, reaches the lab's people as its comments say, and
// the hosts' tags are there for it through EC2 DescribeTags.
func TestLabPolicy(t *testing.T) {
	l := startLab(t, Options{ModelNodes: 2})
	ctx := context.Background()
	got, err := ssmClient(l, l.SecretAccessKey).GetParameter(ctx, &ssmsdk.GetParameterInput{Name: aws.String(PolicyParameter), WithDecryption: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse("ssm://"+PolicyParameter, []byte(aws.ToString(got.Parameter.Value)))
	if err != nil {
		t.Fatalf("the lab's policy: %v", err)
	}
	tags, err := policy.EC2Tags{Client: ec2sdk.NewFromConfig(l.AWSConfig())}.Tags(ctx, []string{l.Models[0].Info().InstanceID})
	if err != nil {
		t.Fatal(err)
	}
	node := l.Models[0].Info()
	if !reflect.DeepEqual(tags[node.InstanceID], node.Tags) {
		t.Fatalf("DescribeTags gave %v, want %v", tags[node.InstanceID], node.Tags)
	}
	staging := policy.Instance{ID: node.InstanceID, Platform: "Linux", Tags: map[string]string{"Env": "staging"}}
	production := policy.Instance{ID: node.InstanceID, Platform: "Linux", Tags: map[string]string{"Env": "production"}}
	for _, tc := range []struct {
		name  string
		req   policy.Request
		allow bool
	}{
		{"the operator, anywhere", policy.Request{Subject: OperatorARN, Targets: []policy.Instance{production}, Duration: 12 * time.Hour, Reason: "lab work on anything", Sudo: true}, true},
		{"ops on staging with a ticket", policy.Request{Subject: "alice", Groups: []string{"ops"}, Targets: []policy.Instance{staging}, Duration: time.Hour, Reason: "INC-1 disk full"}, true},
		{"ops on staging without a ticket", policy.Request{Subject: "alice", Groups: []string{"ops"}, Targets: []policy.Instance{staging}, Duration: time.Hour, Reason: "just looking around"}, false},
		{"ops on production", policy.Request{Subject: "alice", Groups: []string{"ops"}, Targets: []policy.Instance{production}, Duration: time.Hour, Reason: "INC-1 disk full"}, false},
		{"dev on staging without sudo", policy.Request{Subject: "bob", Groups: []string{"dev"}, Targets: []policy.Instance{staging}, Duration: time.Hour, Reason: "CHG-7 deploy"}, true},
		{"admins on production", policy.Request{Subject: "carol", Groups: []string{"admins", "ops"}, Targets: []policy.Instance{production}, Duration: 8 * time.Hour, Reason: "INC-9 outage", Sudo: true}, true},
		{"developers with sudo", policy.Request{Subject: "bob", Groups: []string{"dev"}, Targets: []policy.Instance{staging}, Duration: time.Hour, Reason: "CHG-7 deploy", Sudo: true}, false},
		{"someone else", policy.Request{Subject: "mallory", Targets: []policy.Instance{staging}, Duration: time.Hour, Reason: "INC-1 disk full"}, false},
	} {
		if err := p.Authorize(tc.req).Err(); (err == nil) != tc.allow {
			t.Errorf("%s: %v; want allowed=%v", tc.name, err, tc.allow)
		}
	}
}

// The lab's policy passes its own cases (policy-cases.json, which
// `passport policy test internal/lab/policy.cedar internal/lab/policy-cases.json`
// runs too): who gets what at once, what needs whose approval, who may
// break the glass, approve, see and end.
func TestLabPolicyCases(t *testing.T) {
	p, err := policy.Parse("lab", []byte(labPolicy))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("policy-cases.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cases, err := policy.ParseCases(f)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if failed := policy.Report(&out, p.Run(cases)); failed > 0 {
		t.Fatalf("the lab's policy fails %d of its cases:\n%s", failed, out.String())
	}
}
