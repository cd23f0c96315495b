package ssm

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awscli"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// cli runs Debian's AWS CLI v2 against the lab.
func (l *lab) cli(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return awscli.CLI{Endpoint: l.url, Region: testRegion, AccessKeyID: testKey, SecretAccessKey: testSecret, Dir: t.TempDir()}.Run(args...)
}

func TestAWSCLI(t *testing.T) {
	if err := awscli.Find(); err != nil {
		t.Skip(err)
	}
	l := newLab(t)
	id, host := l.add(node.Linux, map[string]string{"Name": "web-1"})
	host.SetAnswer(0, "hello from the cli\n", "")

	out, stderr, err := l.cli(t, "ssm", "send-command", "--document-name", "AWS-RunShellScript", "--instance-ids", id,
		"--parameters", `{"commands":["echo hello from the cli"]}`, "--comment", "cli test")
	if err != nil {
		t.Fatalf("send-command: %v\n%s", err, stderr)
	}
	var sent struct {
		Command struct {
			CommandId, Status, Comment, RequestedDateTime string
			InstanceIds                                   []string
		}
	}
	if err := json.Unmarshal([]byte(out), &sent); err != nil {
		t.Fatalf("send-command printed %q: %v", out, err)
	}
	c := sent.Command
	if c.CommandId == "" || c.Status != "Pending" || c.Comment != "cli test" || len(c.InstanceIds) != 1 || !strings.HasPrefix(c.RequestedDateTime, "2026-01-24T02:00:00") {
		t.Fatalf("send-command returned %+v", c)
	}

	l.waitDetail(c.CommandId, id, "Success")
	out, stderr, err = l.cli(t, "ssm", "get-command-invocation", "--command-id", c.CommandId, "--instance-id", id)
	if err != nil {
		t.Fatalf("get-command-invocation: %v\n%s", err, stderr)
	}
	var inv struct {
		Status, StandardOutputContent, PluginName string
		ResponseCode                              int
	}
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatalf("get-command-invocation printed %q: %v", out, err)
	}
	if inv.Status != "Success" || inv.StandardOutputContent != "hello from the cli\n" || inv.ResponseCode != 0 || inv.PluginName != "aws:runShellScript" {
		t.Fatalf("get-command-invocation returned %+v", inv)
	}

	out, stderr, err = l.cli(t, "ssm", "describe-instance-information", "--filters", "Key=tag:Name,Values=web-1")
	if err != nil {
		t.Fatalf("describe-instance-information: %v\n%s", err, stderr)
	}
	var described struct {
		InstanceInformationList []struct{ InstanceId, PingStatus, PlatformType string }
	}
	if err := json.Unmarshal([]byte(out), &described); err != nil {
		t.Fatalf("describe-instance-information printed %q: %v", out, err)
	}
	if got := fmt.Sprintf("%+v", described.InstanceInformationList); got != fmt.Sprintf("[{InstanceId:%s PingStatus:Online PlatformType:Linux}]", id) {
		t.Fatalf("describe-instance-information returned %s", got)
	}

	_, stderr, err = l.cli(t, "ssm", "get-command-invocation", "--command-id", c.CommandId, "--instance-id", "i-0000000000000beef")
	if err == nil || !strings.Contains(stderr, "(InvocationDoesNotExist)") {
		t.Fatalf("unknown invocation: err %v, stderr %q; want the CLI to report InvocationDoesNotExist", err, stderr)
	}
}

// TestAWSCLIParameters: the CLI's own pagination (it follows NextToken
// until the listing ends) and its filter shorthand reach the same answers.
func TestAWSCLIParameters(t *testing.T) {
	if err := awscli.Find(); err != nil {
		t.Skip(err)
	}
	l := newLab(t)
	var want []string
	for i := range 12 {
		name := fmt.Sprintf("/team/p%02d", i)
		want = append(want, name)
		l.putAll(name)
	}
	l.putAll("/elsewhere")

	names := func(args ...string) []string {
		t.Helper()
		out, stderr, err := l.cli(t, append([]string{"ssm"}, args...)...)
		if err != nil {
			t.Fatalf("aws ssm %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		var got struct{ Parameters []struct{ Name string } }
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("aws ssm %s printed %q: %v", args[0], out, err)
		}
		var ns []string
		for _, p := range got.Parameters {
			ns = append(ns, p.Name)
		}
		return ns
	}
	if got := names("get-parameters-by-path", "--path", "/team", "--recursive", "--page-size", "5"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("get-parameters-by-path in pages of 5: %v, want %v", got, want)
	}
	if got := names("describe-parameters", "--page-size", "4", "--parameter-filters", "Key=Name,Option=BeginsWith,Values=/team/p1"); strings.Join(got, ",") != "/team/p10,/team/p11" {
		t.Errorf("describe-parameters BeginsWith /team/p1: %v", got)
	}
	if _, stderr, err := l.cli(t, "ssm", "delete-parameter", "--name", "/elsewhere"); err != nil {
		t.Fatalf("delete-parameter: %v\n%s", err, stderr)
	}
	if _, stderr, err := l.cli(t, "ssm", "delete-parameter", "--name", "/elsewhere"); err == nil || !strings.Contains(stderr, "(ParameterNotFound)") {
		t.Fatalf("deleting twice: %v %q; want ParameterNotFound", err, stderr)
	}
}
