package ssm

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

func TestSendCommandRunsScriptAndReportsResult(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	host.SetAnswer(0, "hello from the host\n", "")

	cmd := l.send(&ssm.SendCommandInput{
		InstanceIds: []string{id},
		Parameters: map[string][]string{
			"commands":         {"set -e", "echo hello from the host"},
			"workingDirectory": {"/tmp"},
			"executionTimeout": {"120"},
		},
		Comment: aws.String("grant gr-1"),
	})
	requested := l.clock.Now()
	if cmd.Status != types.CommandStatusPending || cmd.TargetCount != 1 || aws.ToString(cmd.MaxConcurrency) != "50" ||
		aws.ToString(cmd.MaxErrors) != "0" || aws.ToInt32(cmd.TimeoutSeconds) != 3600 || aws.ToString(cmd.Comment) != "grant gr-1" {
		t.Fatalf("SendCommand returned %+v", cmd)
	}
	if !aws.ToTime(cmd.RequestedDateTime).Equal(requested) || !aws.ToTime(cmd.ExpiresAfter).Equal(requested.Add(3600*time.Second+120*time.Second)) {
		t.Fatalf("RequestedDateTime %v, ExpiresAfter %v; want %v and TimeoutSeconds+executionTimeout later", cmd.RequestedDateTime, cmd.ExpiresAfter, requested)
	}
	if len(cmd.Parameters["commands"]) != 2 {
		t.Fatalf("Parameters not echoed: %v", cmd.Parameters)
	}

	out := l.waitDetail(*cmd.CommandId, id, "Success")
	if out.Status != types.CommandInvocationStatusSuccess || out.ResponseCode != 0 ||
		aws.ToString(out.StandardOutputContent) != "hello from the host\n" || aws.ToString(out.PluginName) != "aws:runShellScript" ||
		aws.ToString(out.DocumentName) != "AWS-RunShellScript" || aws.ToString(out.Comment) != "grant gr-1" {
		t.Fatalf("GetCommandInvocation = %+v", out)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(aws.ToString(out.ExecutionStartDateTime)) ||
		!strings.HasPrefix(aws.ToString(out.ExecutionElapsedTime), "PT") {
		t.Fatalf("execution times %q %q %q", aws.ToString(out.ExecutionStartDateTime), aws.ToString(out.ExecutionEndDateTime), aws.ToString(out.ExecutionElapsedTime))
	}

	runs := host.runs()
	// The agent writes the lines to the script file, each ended by a newline.
	want := node.Script{Document: "AWS-RunShellScript", Plugin: "aws:runShellScript", Source: "set -e\necho hello from the host\n", WorkingDirectory: "/tmp", Timeout: 120 * time.Second}
	if len(runs) != 1 || runs[0] != want {
		t.Fatalf("node ran %+v, want %+v", runs, want)
	}

	c := l.waitCommand(*cmd.CommandId, "Success")
	if c.Status != types.CommandStatusSuccess || c.CompletedCount != 1 || c.ErrorCount != 0 {
		t.Fatalf("command = %+v", c)
	}
}

func TestFailingScriptReportsExitCodeAndStderr(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	host.SetAnswer(3, "partial\n", "useradd: user exists\n")
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	out := l.waitDetail(*cmd.CommandId, id, "Failed")
	if out.Status != types.CommandInvocationStatusFailed || out.ResponseCode != 3 ||
		aws.ToString(out.StandardErrorContent) != "useradd: user exists\n" || aws.ToString(out.StandardOutputContent) != "partial\n" {
		t.Fatalf("GetCommandInvocation = %+v", out)
	}
	c := l.waitCommand(*cmd.CommandId, "Failed")
	if c.Status != types.CommandStatusFailed || c.ErrorCount != 1 || c.CompletedCount != 1 {
		t.Fatalf("command = %+v", c)
	}
}

func TestPowerShellOnWindows(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Windows, nil)
	host.SetAnswer(0, "ok", "")
	cmd := l.send(&ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPowerShellScript"), InstanceIds: []string{id},
		Parameters: map[string][]string{"commands": {"New-LocalUser -Name x"}}})
	out := l.waitDetail(*cmd.CommandId, id, "Success")
	if aws.ToString(out.PluginName) != "aws:runPowerShellScript" || host.runs()[0].Document != "AWS-RunPowerShellScript" {
		t.Fatalf("GetCommandInvocation = %+v, runs %+v", out, host.runs())
	}
}

func TestSendCommandRefusesBadInput(t *testing.T) {
	l := newLab(t)
	linux, _ := l.add(node.Linux, nil)
	windows, _ := l.add(node.Windows, nil)
	fiftyOne := make([]string, 51)
	for i := range fiftyOne {
		fiftyOne[i] = fmt.Sprintf("i-%017x", i)
	}
	shell := func(params map[string][]string) *ssm.SendCommandInput {
		return &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux}, Parameters: params}
	}
	commands := map[string][]string{"commands": {"true"}}
	tests := []struct {
		name string
		in   *ssm.SendCommandInput
		want func(error) bool
		msg  string
	}{
		{"51 instance ids", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: fiftyOne, Parameters: commands},
			is[*types.ValidationException], "at 'instanceIds' failed to satisfy constraint: Member must have length less than or equal to 50"},
		{"malformed instance id", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{"web-1"}, Parameters: commands},
			is[*types.ValidationException], "regular expression pattern"},
		{"unknown instance", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux, "i-0000000000000dead"}, Parameters: commands},
			is[*types.InvalidInstanceId], "Instances [[i-0000000000000dead]] not in a valid state for account " + testAccount},
		{"no targets at all", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), Parameters: commands},
			is[*types.ValidationException], "Either InstanceIds or Targets"},
		{"instance ids and targets", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux},
			Targets: []types.Target{{Key: aws.String("tag:Role"), Values: []string{"web"}}}, Parameters: commands},
			is[*types.ValidationException], "cannot be used together"},
		{"unknown document", &ssm.SendCommandInput{DocumentName: aws.String("AWS-ApplyPatchBaseline"), InstanceIds: []string{linux}, Parameters: commands},
			is[*types.InvalidDocument], "AWS-ApplyPatchBaseline"},
		{"unknown document version", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), DocumentVersion: aws.String("7"), InstanceIds: []string{linux}, Parameters: commands},
			is[*types.InvalidDocumentVersion], "no version 7"},
		{"no commands", shell(map[string][]string{"workingDirectory": {"/"}}), is[*types.InvalidParameters], "commands is required"},
		{"empty commands", shell(map[string][]string{"commands": {}}), is[*types.InvalidParameters], "commands is required"},
		{"unknown parameter", shell(map[string][]string{"commands": {"true"}, "runAsUser": {"root"}}), is[*types.InvalidParameters], `"runAsUser" is not a parameter`},
		{"execution timeout zero", shell(map[string][]string{"commands": {"true"}, "executionTimeout": {"0"}}), is[*types.InvalidParameters], "executionTimeout"},
		{"execution timeout too long", shell(map[string][]string{"commands": {"true"}, "executionTimeout": {"172801"}}), is[*types.InvalidParameters], "executionTimeout"},
		{"execution timeout not a number", shell(map[string][]string{"commands": {"true"}, "executionTimeout": {"1h"}}), is[*types.InvalidParameters], "executionTimeout"},
		{"two working directories", shell(map[string][]string{"commands": {"true"}, "workingDirectory": {"/a", "/b"}}), is[*types.InvalidParameters], "workingDirectory"},
		{"timeout below 30", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux}, Parameters: commands, TimeoutSeconds: aws.Int32(29)},
			is[*types.ValidationException], "at 'timeoutSeconds' failed to satisfy constraint: Member must have value greater than or equal to 30"},
		{"timeout above 30 days", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux}, Parameters: commands, TimeoutSeconds: aws.Int32(2592001)},
			is[*types.ValidationException], "less than or equal to 2592000"},
		{"long comment", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux}, Parameters: commands, Comment: aws.String(strings.Repeat("c", 101))},
			is[*types.ValidationException], "at 'comment' failed to satisfy constraint: Member must have length less than or equal to 100"},
		{"zero concurrency", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux}, Parameters: commands, MaxConcurrency: aws.String("0")},
			is[*types.ValidationException], "maxConcurrency"},
		{"concurrency over 100%", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux}, Parameters: commands, MaxConcurrency: aws.String("101%")},
			is[*types.ValidationException], "maxConcurrency"},
		{"negative max errors", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux}, Parameters: commands, MaxErrors: aws.String("-1")},
			is[*types.ValidationException], "maxErrors"},
		{"several violations at once", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{linux}, Parameters: commands, MaxErrors: aws.String("x"), TimeoutSeconds: aws.Int32(1)},
			is[*types.ValidationException], "2 validation errors detected"},
		{"shell script on windows", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{windows}, Parameters: commands},
			is[*types.UnsupportedPlatformType], windows},
		{"powershell on linux", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPowerShellScript"), InstanceIds: []string{linux}, Parameters: commands},
			is[*types.UnsupportedPlatformType], linux},
		{"resource group target", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), Targets: []types.Target{{Key: aws.String("resource-groups:Name"), Values: []string{"g"}}}, Parameters: commands},
			is[*types.InvalidParameters], "resource-groups:Name"},
		{"six targets", &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), Parameters: commands, Targets: []types.Target{
			{Key: aws.String("tag:a"), Values: []string{"1"}}, {Key: aws.String("tag:b"), Values: []string{"1"}}, {Key: aws.String("tag:c"), Values: []string{"1"}},
			{Key: aws.String("tag:d"), Values: []string{"1"}}, {Key: aws.String("tag:e"), Values: []string{"1"}}, {Key: aws.String("tag:f"), Values: []string{"1"}}}},
			is[*types.ValidationException], "1 validation error detected: Value '[Target(key=tag:a, values=[1]), Target(key=tag:b, values=[1])"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.client.SendCommand(context.Background(), tt.in)
			if err == nil || !tt.want(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want an error containing %q", err, tt.msg)
			}
		})
	}
	if got := l.server.Calls()["AmazonSSM.SendCommand"]; got != len(tests) {
		t.Fatalf("server saw %d SendCommand calls, want %d (client errors must not be retried)", got, len(tests))
	}
}

func TestTargetsSelectNodesByTag(t *testing.T) {
	l := newLab(t)
	web1, _ := l.add(node.Linux, map[string]string{"Role": "web", "Env": "prod"})
	web2, _ := l.add(node.Linux, map[string]string{"Role": "web", "Env": "dev"})
	db, _ := l.add(node.Linux, map[string]string{"Role": "db", "Env": "prod", "Backup": ""})
	win, _ := l.add(node.Windows, map[string]string{"Role": "web", "Env": "prod"})

	tests := []struct {
		name    string
		targets []types.Target
		want    []string
	}{
		{"one tag", []types.Target{{Key: aws.String("tag:Role"), Values: []string{"db"}}}, []string{db}},
		{"tag with two values", []types.Target{{Key: aws.String("tag:Env"), Values: []string{"dev", "prod"}}}, []string{web1, web2, db, win}},
		{"two tags narrow", []types.Target{{Key: aws.String("tag:Role"), Values: []string{"web"}}, {Key: aws.String("tag:Env"), Values: []string{"prod"}}}, []string{web1, win}},
		{"tag-key", []types.Target{{Key: aws.String("tag-key"), Values: []string{"Backup"}}}, []string{db}},
		{"instance ids", []types.Target{{Key: aws.String("InstanceIds"), Values: []string{web2, db}}}, []string{web2, db}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := l.send(&ssm.SendCommandInput{Targets: tt.targets})
			if int(cmd.TargetCount) != len(tt.want) || len(cmd.InstanceIds) != 0 || len(cmd.Targets) != len(tt.targets) {
				t.Fatalf("TargetCount %d, InstanceIds %v, Targets %v; want %d targets", cmd.TargetCount, cmd.InstanceIds, cmd.Targets, len(tt.want))
			}
			for _, id := range tt.want {
				out := l.invocation(*cmd.CommandId, id)
				if id == win {
					// A Windows node picked by tag gets no shell script.
					if aws.ToString(out.StatusDetails) != "InvalidPlatform" || out.Status != types.CommandInvocationStatusFailed {
						t.Fatalf("windows invocation = %s/%s", out.Status, aws.ToString(out.StatusDetails))
					}
					continue
				}
				l.waitDetail(*cmd.CommandId, id, "Success")
			}
		})
	}

	t.Run("no match", func(t *testing.T) {
		cmd := l.send(&ssm.SendCommandInput{Targets: []types.Target{{Key: aws.String("tag:Role"), Values: []string{"cache"}}}})
		if cmd.TargetCount != 0 || cmd.Status != types.CommandStatusFailed || aws.ToString(cmd.StatusDetails) != "NoInstancesInTag" {
			t.Fatalf("command = %s/%s with %d targets", cmd.Status, aws.ToString(cmd.StatusDetails), cmd.TargetCount)
		}
	})
	t.Run("unknown instance id target", func(t *testing.T) {
		_, err := l.client.SendCommand(context.Background(), &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"),
			Parameters: map[string][]string{"commands": {"true"}},
			Targets:    []types.Target{{Key: aws.String("InstanceIds"), Values: []string{"i-0000000000000beef"}}}})
		if !is[*types.InvalidInstanceId](err) {
			t.Fatalf("got %v, want InvalidInstanceId", err)
		}
	})
}

func TestMaxConcurrencyLimitsParallelRuns(t *testing.T) {
	tests := []struct {
		concurrency string
		nodes, want int
	}{
		{"2", 6, 2},
		{"50%", 4, 2},
		{"1%", 3, 1}, // rounds up: a command always makes progress
	}
	for _, tt := range tests {
		// Scripts wait for the test: the lab must start exactly the limit,
		// and no more however often it looks, until they are let go.
		t.Run(tt.concurrency, func(t *testing.T) {
			l := newLab(t)
			instanceIDs, hosts := ids(tt.nodes, l, node.Linux, nil)
			overall, gate := &gauge{}, make(chan struct{})
			for _, h := range hosts {
				h.gauge, h.gate = overall, gate
			}
			cmd := l.send(&ssm.SendCommandInput{InstanceIds: instanceIDs, MaxConcurrency: aws.String(tt.concurrency)})
			id := *cmd.CommandId
			l.eventually("the first scripts to start", func() error {
				if n := l.inProgress(id); n < tt.want {
					return fmt.Errorf("%d in progress", n)
				}
				return nil
			})
			for range 3 {
				l.step(id)
				if n := l.inProgress(id); n != tt.want {
					t.Fatalf("%d invocations in progress at once, want %d", n, tt.want)
				}
			}
			close(gate)
			l.waitCommand(id, "Success")
			if got := overall.peak(); got > tt.want {
				t.Fatalf("%d scripts ran at once, want at most %d", got, tt.want)
			}
		})
	}
}

func TestMaxErrorsStopsFurtherDeliveries(t *testing.T) {
	l := newLab(t)
	instanceIDs, hosts := ids(5, l, node.Linux, nil)
	for _, h := range hosts {
		h.SetAnswer(1, "", "boom")
	}
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: instanceIDs, MaxConcurrency: aws.String("1"), MaxErrors: aws.String("1")})
	c := l.waitCommand(*cmd.CommandId, "Failed")
	if c.Status != types.CommandStatusFailed || c.ErrorCount != 2 || c.CompletedCount != 5 || c.TargetCount != 5 {
		t.Fatalf("command = %+v", c)
	}
	for i, id := range instanceIDs {
		out := l.invocation(*cmd.CommandId, id)
		ran := len(hosts[i].runs())
		if i < 2 {
			if aws.ToString(out.StatusDetails) != "Failed" || ran != 1 {
				t.Fatalf("invocation %d: %s after %d runs, want Failed after 1", i, aws.ToString(out.StatusDetails), ran)
			}
			continue
		}
		if aws.ToString(out.StatusDetails) != "Terminated" || out.Status != types.CommandInvocationStatusCancelled || ran != 0 || out.ResponseCode != -1 {
			t.Fatalf("invocation %d: %s/%s code %d after %d runs, want Terminated and never run", i, out.Status, aws.ToString(out.StatusDetails), out.ResponseCode, ran)
		}
	}
}

func TestMaxErrorsPercentageAllowsSomeFailures(t *testing.T) {
	l := newLab(t)
	instanceIDs, hosts := ids(4, l, node.Linux, nil)
	hosts[0].SetAnswer(1, "", "boom")
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: instanceIDs, MaxConcurrency: aws.String("1"), MaxErrors: aws.String("25%")})
	c := l.waitCommand(*cmd.CommandId, "Incomplete")
	if c.ErrorCount != 1 || c.CompletedCount != 4 {
		t.Fatalf("command = %+v", c)
	}
	for _, h := range hosts {
		if len(h.runs()) != 1 {
			t.Fatal("within MaxErrors every node must run the script")
		}
	}
}
