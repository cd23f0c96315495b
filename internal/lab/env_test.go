package lab

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awscli"
)

// Debian's own AWS CLI v2 and Python, which scripts/install.sh installs
// (with python3-boto3). The aws and python3 first on PATH may be others
// from pip or pyenv, so the paths are fixed.
const (
	debianAWSCLI = awscli.Path
	debianPython = "/usr/bin/python3"
)

// sourced runs argv in a POSIX shell that has sourced the lab's env.sh
// first, with nothing else from this process's environment: a HOME with no
// ~/.aws, and only PATH kept, as in a new terminal where a person types
// `. env.sh` and then the command.
func sourced(t *testing.T, l *Lab, argv ...string) (stdout, stderr string, err error) {
	t.Helper()
	script := `. "$1" && shift && exec "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh", filepath.Join(l.Dir, "env.sh")}, argv...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func modelIDs(l *Lab) []string {
	var ids []string
	for _, m := range l.Models {
		ids = append(ids, m.Info().InstanceID)
	}
	slices.Sort(ids)
	return ids
}

// TestEnvShWithDebiansAWSCLI: the commands the lab guide gives for the
// AWS CLI that install.sh brings reach the lab, after only `. env.sh`.
func TestEnvShWithDebiansAWSCLI(t *testing.T) {
	if err := awscli.Find(); err != nil {
		t.Fatal(err)
	}
	l := startLab(t, Options{ModelNodes: 2})

	// As the guide writes it; "$0" is Debian's aws, which a person's PATH
	// finds first on a machine without another.
	aws := func(args string) (string, string, error) {
		return sourced(t, l, "sh", "-c", `"$0" --endpoint-url "$AWS_ENDPOINT_URL" --output json `+args, debianAWSCLI)
	}
	out, stderr, err := aws("ssm describe-instance-information")
	if err != nil {
		t.Fatalf("aws ssm describe-instance-information: %v\n%s", err, stderr)
	}
	var described struct{ InstanceInformationList []struct{ InstanceId string } }
	if err := json.Unmarshal([]byte(out), &described); err != nil {
		t.Fatalf("aws printed %q: %v", out, err)
	}
	var ids []string
	for _, i := range described.InstanceInformationList {
		ids = append(ids, i.InstanceId)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, modelIDs(l)) {
		t.Errorf("aws lists %v, want the lab's nodes %v", ids, modelIDs(l))
	}

	out, stderr, err = aws("sts get-caller-identity")
	if err != nil {
		t.Fatalf("aws sts get-caller-identity: %v\n%s", err, stderr)
	}
	var caller struct{ Arn string }
	if err := json.Unmarshal([]byte(out), &caller); err != nil || caller.Arn != OperatorARN {
		t.Errorf("aws sts get-caller-identity printed %q (%v), want the lab's operator %s", out, err, OperatorARN)
	}
}

// TestEnvShWithBoto3: a Python program written the way the lab guide says
// works with Debian's python3-boto3 after `. env.sh`: the region comes from
// AWS_DEFAULT_REGION (boto3 reads no AWS_REGION) and the endpoint from
// AWS_ENDPOINT_URL.
func TestEnvShWithBoto3(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import boto3").Run(); err != nil {
		t.Fatalf("%s cannot import boto3 (%v): run scripts/install.sh (Debian package python3-boto3)", debianPython, err)
	}
	l := startLab(t, Options{ModelNodes: 2})
	program := `
import json, os, boto3
endpoint = os.environ["AWS_ENDPOINT_URL"]
ssm = boto3.client("ssm", endpoint_url=endpoint)
ids = [i["InstanceId"] for i in ssm.describe_instance_information()["InstanceInformationList"]]
arn = boto3.client("sts", endpoint_url=endpoint).get_caller_identity()["Arn"]
print(json.dumps({"ids": sorted(ids), "arn": arn}))
`
	out, stderr, err := sourced(t, l, debianPython, "-c", program)
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, stderr)
	}
	var got struct {
		IDs []string
		Arn string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("the boto3 program printed %q: %v", out, err)
	}
	if !slices.Equal(got.IDs, modelIDs(l)) || got.Arn != OperatorARN {
		t.Errorf("boto3 saw nodes %v as %s; want %v as %s", got.IDs, got.Arn, modelIDs(l), OperatorARN)
	}
}

// TestEnvShWithTheGoSDK: clients that read AWS_ENDPOINT_URL need nothing
// but env.sh. Passport's own AWS configuration (the Go SDK's default
// chain) is one; it must reach the lab for every service it uses.
func TestEnvShWithTheGoSDK(t *testing.T) {
	l := startLab(t, Options{ModelNodes: 2})
	out, stderr, err := sourced(t, l, "env")
	if err != nil {
		t.Fatalf("env after . env.sh: %v\n%s", err, stderr)
	}
	for _, k := range []string{"AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("HOME", t.TempDir())
	for line := range strings.Lines(out) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, v)
		}
	}
	// Only the global variable: a client that reads it needs no other.
	for _, k := range []string{"SSM", "KMS", "STS", "SSMMESSAGES", "EC2"} {
		os.Unsetenv("AWS_ENDPOINT_URL_" + k)
	}
	ctx := context.Background()
	c, err := awsconfig.Load(ctx, awsconfig.Settings{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.SSM.DescribeInstanceInformation(ctx, &ssmsdk.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatalf("DescribeInstanceInformation with only env.sh's variables: %v", err)
	}
	if len(info.InstanceInformationList) != 2 {
		t.Errorf("the Go SDK lists %d nodes, want the lab's 2", len(info.InstanceInformationList))
	}
	for name, endpoint := range map[string]*string{"SSM": c.SSM.Options().BaseEndpoint, "KMS": c.KMS.Options().BaseEndpoint, "STS": c.STS.Options().BaseEndpoint, "EC2": c.EC2.Options().BaseEndpoint} {
		if aws.ToString(endpoint) != l.Endpoint {
			t.Errorf("%s endpoint %q, want the lab's %s", name, aws.ToString(endpoint), l.Endpoint)
		}
	}
}
