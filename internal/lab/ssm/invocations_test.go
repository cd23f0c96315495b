package ssm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

func TestOutputIsTruncatedAsTheAPIDoes(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	stdout := strings.Repeat("o", 24000) + "TAIL-OF-STDOUT"
	stderr := strings.Repeat("e", 8000) + "TAIL-OF-STDERR"
	host.SetAnswer(1, stdout, stderr)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	out := l.waitDetail(*cmd.CommandId, id, "Failed")
	if got := aws.ToString(out.StandardOutputContent); got != stdout[:24000] {
		t.Fatalf("StandardOutputContent has %d chars, want the first 24000", len(got))
	}
	if got := aws.ToString(out.StandardErrorContent); got != stderr[:8000] {
		t.Fatalf("StandardErrorContent has %d chars, want the first 8000", len(got))
	}

	list, err := l.client.ListCommandInvocations(context.Background(), &ssm.ListCommandInvocationsInput{CommandId: cmd.CommandId, Details: true})
	if err != nil {
		t.Fatal(err)
	}
	plugins := list.CommandInvocations[0].CommandPlugins
	if len(plugins) != 1 {
		t.Fatalf("CommandPlugins = %+v", plugins)
	}
	p := plugins[0]
	output := aws.ToString(p.Output)
	if len(output) > 2500 || !strings.HasPrefix(output, "ooo") || !strings.Contains(output, "\n---Output truncated---\n----------ERROR-------\neee") ||
		!strings.HasSuffix(output, "\n---Error truncated----") {
		t.Fatalf("plugin Output (%d chars) is not the agent's truncated combination: %q...%q", len(output), output[:40], output[len(output)-40:])
	}
	if aws.ToString(p.Name) != "aws:runShellScript" || p.Status != types.CommandPluginStatusFailed || p.ResponseCode != 1 ||
		p.ResponseStartDateTime == nil || p.ResponseFinishDateTime == nil {
		t.Fatalf("plugin = %+v", p)
	}

	list, err = l.client.ListCommandInvocations(context.Background(), &ssm.ListCommandInvocationsInput{CommandId: cmd.CommandId})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.CommandInvocations[0].CommandPlugins) != 0 {
		t.Fatal("CommandPlugins are only reported with Details")
	}
}

func TestPluginOutputCombinesStreamsLikeTheAgent(t *testing.T) {
	const (
		capacity = 100
		title    = "\n----------ERROR-------\n"
		outMark  = "\n---Output truncated---"
		errMark  = "\n---Error truncated----"
	)
	space := capacity - len(title)
	tests := []struct {
		name, stdout, stderr, want string
	}{
		{"stdout only", "hello\n", "", "hello\n"},
		{"both fit", "out", "err", "out" + title + "err"},
		{"stderr only", "", "err", title + "err"},
		{"stdout too long, no stderr", strings.Repeat("o", 150), "",
			strings.Repeat("o", capacity-len(outMark)) + outMark},
		{"both too long: each keeps half", strings.Repeat("o", 150), strings.Repeat("e", 150),
			strings.Repeat("o", (space-2*len(outMark))/2) + outMark + title + strings.Repeat("e", (space-2*len(outMark))/2) + errMark},
		{"short stdout keeps everything", "out", strings.Repeat("e", 150),
			"out" + title + strings.Repeat("e", space-len(errMark)-3) + errMark},
		{"short stderr keeps everything", strings.Repeat("o", 150), "err",
			strings.Repeat("o", space-len(outMark)-3) + outMark + title + "err"},
		{"no split utf-8", strings.Repeat("é", 100), "", strings.Repeat("é", (capacity-len(outMark))/2) + outMark},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pluginOutput(tt.stdout, tt.stderr, capacity)
			if got != tt.want {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
			if len(got) > capacity {
				t.Fatalf("%d bytes exceed the capacity of %d", len(got), capacity)
			}
		})
	}
}

func TestCancelCommandStopsRunningAndPendingInvocations(t *testing.T) {
	l := newLab(t)
	running, busy := l.add(node.Linux, nil)
	busy.SetDelay(time.Hour)
	offline, away := l.add(node.Linux, nil)
	away.SetOnline(false)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{running, offline}})
	l.waitDetail(*cmd.CommandId, running, "InProgress")

	if _, err := l.client.CancelCommand(context.Background(), &ssm.CancelCommandInput{CommandId: cmd.CommandId}); err != nil {
		t.Fatal(err)
	}
	out := l.waitDetail(*cmd.CommandId, running, "Cancelled")
	if out.Status != types.CommandInvocationStatusCancelled {
		t.Fatalf("running invocation = %s", out.Status)
	}
	if out := l.invocation(*cmd.CommandId, offline); out.Status != types.CommandInvocationStatusCancelled {
		t.Fatalf("pending invocation = %s/%s", out.Status, aws.ToString(out.StatusDetails))
	}
	c := l.waitCommand(*cmd.CommandId, "Cancelled")
	if c.Status != types.CommandStatusCancelled || c.CompletedCount != 2 {
		t.Fatalf("command = %s, %d completed", c.Status, c.CompletedCount)
	}

	// The pending node reconnecting does not bring the command back.
	away.SetOnline(true)
	l.step(*cmd.CommandId)
	if out := l.invocation(*cmd.CommandId, offline); len(away.runs()) != 0 || out.Status != types.CommandInvocationStatusCancelled {
		t.Fatalf("a cancelled invocation was delivered when its node came back: %s, %d runs", out.Status, len(away.runs()))
	}
	// Cancelling a finished command is accepted, as on AWS.
	if _, err := l.client.CancelCommand(context.Background(), &ssm.CancelCommandInput{CommandId: cmd.CommandId}); err != nil {
		t.Fatal(err)
	}
}

func TestCancelCommandForOneInstance(t *testing.T) {
	l := newLab(t)
	a, slowA := l.add(node.Linux, nil)
	b, slowB := l.add(node.Linux, nil)
	slowA.SetDelay(time.Hour)
	slowB.SetDelay(50 * time.Millisecond)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{a, b}})
	l.waitDetail(*cmd.CommandId, a, "InProgress")
	if _, err := l.client.CancelCommand(context.Background(), &ssm.CancelCommandInput{CommandId: cmd.CommandId, InstanceIds: []string{a}}); err != nil {
		t.Fatal(err)
	}
	l.waitDetail(*cmd.CommandId, a, "Cancelled")
	l.waitDetail(*cmd.CommandId, b, "Success")
}

func TestCancelCommandRefusesBadInput(t *testing.T) {
	l := newLab(t)
	id, _ := l.add(node.Linux, nil)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	tests := []struct {
		name string
		in   *ssm.CancelCommandInput
		want func(error) bool
	}{
		{"unknown command", &ssm.CancelCommandInput{CommandId: aws.String("00000000-0000-4000-8000-000000000000")}, is[*types.InvalidCommandId]},
		{"short command id", &ssm.CancelCommandInput{CommandId: aws.String("abc")}, is[*types.ValidationException]},
		{"instance not in command", &ssm.CancelCommandInput{CommandId: cmd.CommandId, InstanceIds: []string{"i-0000000000000beef"}}, is[*types.InvalidInstanceId]},
		{"duplicate instance", &ssm.CancelCommandInput{CommandId: cmd.CommandId, InstanceIds: []string{id, id}}, is[*types.DuplicateInstanceId]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.client.CancelCommand(context.Background(), tt.in)
			if !tt.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestDeliveryTimeout(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	host.SetOnline(false)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}, TimeoutSeconds: aws.Int32(30),
		Parameters: map[string][]string{"commands": {"true"}, "executionTimeout": {"60"}}})

	l.clock.Advance(29 * time.Second)
	l.step(*cmd.CommandId)
	if out := l.invocation(*cmd.CommandId, id); out.Status != types.CommandInvocationStatusPending || out.ResponseCode != -1 {
		t.Fatalf("before the timeout the invocation is %s (code %d), want Pending (-1)", out.Status, out.ResponseCode)
	}
	l.clock.Advance(time.Second)
	out := l.waitDetail(*cmd.CommandId, id, "DeliveryTimedOut")
	if out.Status != types.CommandInvocationStatusTimedOut || out.ResponseCode != -1 || aws.ToString(out.ExecutionStartDateTime) != "" {
		t.Fatalf("invocation = %+v", out)
	}
	c := l.waitCommand(*cmd.CommandId, "DeliveryTimedOut")
	if c.Status != types.CommandStatusTimedOut || c.DeliveryTimedOutCount != 1 || c.ErrorCount != 0 || c.CompletedCount != 1 {
		t.Fatalf("command = %s, counts %d/%d/%d", c.Status, c.DeliveryTimedOutCount, c.ErrorCount, c.CompletedCount)
	}
	host.SetOnline(true)
	l.step(*cmd.CommandId)
	if out := l.invocation(*cmd.CommandId, id); len(host.runs()) != 0 || aws.ToString(out.StatusDetails) != "DeliveryTimedOut" {
		t.Fatalf("a timed-out delivery ran when the node came back: %s, %d runs", aws.ToString(out.StatusDetails), len(host.runs()))
	}
}

func TestOfflineNodeRunsWhenItReconnects(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	host.SetOnline(false)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	l.step(*cmd.CommandId)
	if out := l.invocation(*cmd.CommandId, id); out.Status != types.CommandInvocationStatusPending {
		t.Fatalf("offline node's invocation is %s, want Pending", out.Status)
	}
	host.SetOnline(true)
	l.waitDetail(*cmd.CommandId, id, "Success")
}

func TestExecutionTimeout(t *testing.T) {
	l := newLab(t)
	id, host := l.add(node.Linux, nil)
	host.SetDelay(time.Hour)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}, Parameters: map[string][]string{"commands": {"sleep 3600"}, "executionTimeout": {"1"}}})
	out := l.waitDetail(*cmd.CommandId, id, "ExecutionTimedOut")
	if out.Status != types.CommandInvocationStatusTimedOut || out.ResponseCode != -1 {
		t.Fatalf("invocation = %s code %d", out.Status, out.ResponseCode)
	}
	c := l.waitCommand(*cmd.CommandId, "ExecutionTimedOut")
	if c.Status != types.CommandStatusTimedOut || c.ErrorCount != 1 {
		t.Fatalf("command = %s, %d errors", c.Status, c.ErrorCount)
	}
}

func TestNodeLostMidRunEndsFailed(t *testing.T) {
	for _, how := range []string{"node reconnects", "execution timeout passes"} {
		t.Run(how, func(t *testing.T) {
			l := newLab(t)
			id, host := l.add(node.Linux, nil)
			host.SetDelay(100 * time.Millisecond)
			cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}, Parameters: map[string][]string{"commands": {"true"}, "executionTimeout": {"600"}}})
			l.waitDetail(*cmd.CommandId, id, "InProgress")
			host.SetOnline(false)
			l.eventually("the node's Run returning", func() error {
				if host.returned() == 0 {
					return errors.New("still running")
				}
				return nil
			})
			if out := l.invocation(*cmd.CommandId, id); out.Status != types.CommandInvocationStatusInProgress {
				t.Fatalf("while the node is away the invocation is %s, want InProgress", out.Status)
			}
			if how == "node reconnects" {
				host.SetOnline(true)
			} else {
				l.clock.Advance(601 * time.Second)
			}
			out := l.waitDetail(*cmd.CommandId, id, "Failed")
			if out.ResponseCode != -1 {
				t.Fatalf("ResponseCode %d, want -1", out.ResponseCode)
			}
		})
	}
}

func TestRemovedNodeIsUndeliverable(t *testing.T) {
	l := newLab(t)
	gone, host := l.add(node.Linux, nil)
	stays, _ := l.add(node.Linux, nil)
	host.SetOnline(false)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{gone, stays}})
	l.waitDetail(*cmd.CommandId, stays, "Success")
	l.svc.RemoveNode(gone)
	out := l.waitDetail(*cmd.CommandId, gone, "Undeliverable")
	if out.Status != types.CommandInvocationStatusFailed {
		t.Fatalf("Undeliverable invocation has Status %s", out.Status)
	}
	// Undeliverable invocations do not keep a command from succeeding.
	l.waitCommand(*cmd.CommandId, "Success")

	// Undeliverable is a detail, and a Status filter value the API
	// reference lists for ListCommandInvocations.
	listed, err := l.client.ListCommandInvocations(context.Background(), &ssm.ListCommandInvocationsInput{
		Filters: []types.CommandFilter{{Key: types.CommandFilterKeyStatus, Value: aws.String("Undeliverable")}}})
	if err != nil || len(listed.CommandInvocations) != 1 || aws.ToString(listed.CommandInvocations[0].InstanceId) != gone {
		t.Fatalf("ListCommandInvocations with Status Undeliverable: %v, %+v; want the invocation on %s", err, listed, gone)
	}
}

func TestGetCommandInvocationRefusesBadInput(t *testing.T) {
	l := newLab(t)
	id, _ := l.add(node.Linux, nil)
	other, _ := l.add(node.Linux, nil)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	tests := []struct {
		name string
		in   *ssm.GetCommandInvocationInput
		want func(error) bool
	}{
		{"unknown command", &ssm.GetCommandInvocationInput{CommandId: aws.String("00000000-0000-4000-8000-000000000000"), InstanceId: aws.String(id)}, is[*types.InvocationDoesNotExist]},
		{"instance not targeted", &ssm.GetCommandInvocationInput{CommandId: cmd.CommandId, InstanceId: aws.String(other)}, is[*types.InvocationDoesNotExist]},
		{"wrong plugin", &ssm.GetCommandInvocationInput{CommandId: cmd.CommandId, InstanceId: aws.String(id), PluginName: aws.String("aws:runPowerShellScript")}, is[*types.InvalidPluginName]},
		{"short command id", &ssm.GetCommandInvocationInput{CommandId: aws.String("1234"), InstanceId: aws.String(id)}, is[*types.ValidationException]},
		{"malformed instance id", &ssm.GetCommandInvocationInput{CommandId: cmd.CommandId, InstanceId: aws.String("i-xyz")}, is[*types.ValidationException]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.client.GetCommandInvocation(context.Background(), tt.in)
			if !tt.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
	out, err := l.client.GetCommandInvocation(context.Background(), &ssm.GetCommandInvocationInput{CommandId: cmd.CommandId, InstanceId: aws.String(id), PluginName: aws.String("aws:runShellScript")})
	if err != nil || aws.ToString(out.PluginName) != "aws:runShellScript" {
		t.Fatalf("naming the document's plugin: %v", err)
	}
}

func TestListCommandInvocationsPaginates(t *testing.T) {
	l := newLab(t)
	instanceIDs, _ := ids(7, l, node.Linux, nil)
	first := l.send(&ssm.SendCommandInput{InstanceIds: instanceIDs})
	l.clock.Advance(time.Minute)
	second := l.send(&ssm.SendCommandInput{InstanceIds: instanceIDs[:2]})
	l.waitCommand(*first.CommandId, "Success")
	l.waitCommand(*second.CommandId, "Success")

	var got []string
	pages := 0
	p := ssm.NewListCommandInvocationsPaginator(l.client, &ssm.ListCommandInvocationsInput{MaxResults: aws.Int32(3)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.CommandInvocations) > 3 {
			t.Fatalf("page of %d, MaxResults is 3", len(out.CommandInvocations))
		}
		for _, inv := range out.CommandInvocations {
			got = append(got, aws.ToString(inv.CommandId)+"/"+aws.ToString(inv.InstanceId))
		}
	}
	if len(got) != 9 || pages != 3 {
		t.Fatalf("listed %d invocations in %d pages, want 9 in 3", len(got), pages)
	}
	if !strings.HasPrefix(got[0], *second.CommandId) {
		t.Fatalf("newest command's invocations come first; got %s", got[0])
	}
	seen := map[string]bool{}
	for _, g := range got {
		if seen[g] {
			t.Fatalf("%s listed twice", g)
		}
		seen[g] = true
	}

	byInstance, err := l.client.ListCommandInvocations(context.Background(), &ssm.ListCommandInvocationsInput{InstanceId: aws.String(instanceIDs[5])})
	if err != nil || len(byInstance.CommandInvocations) != 1 || aws.ToString(byInstance.CommandInvocations[0].CommandId) != *first.CommandId {
		t.Fatalf("InstanceId filter: %v %+v", err, byInstance)
	}
	inv := byInstance.CommandInvocations[0]
	if aws.ToString(inv.InstanceName) == "" || inv.Status != types.CommandInvocationStatusSuccess || inv.RequestedDateTime == nil {
		t.Fatalf("invocation = %+v", inv)
	}
}

func TestListingsRefuseBadInput(t *testing.T) {
	l := newLab(t)
	id, _ := l.add(node.Linux, nil)
	l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want func(error) bool
	}{
		{"forged token", func() error {
			_, err := l.client.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{NextToken: aws.String("eyJvIjoiTGlzdENvbW1hbmRzIiwiYSI6IjEifQ.AAAA")})
			return err
		}, is[*types.InvalidNextToken]},
		{"token from another operation", func() error {
			tok := l.svc.pages.Token("ListCommands", "x")
			_, err := l.client.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{NextToken: aws.String(tok)})
			return err
		}, is[*types.InvalidNextToken]},
		{"max results 0", func() error {
			_, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{MaxResults: aws.Int32(0)})
			return err
		}, is[*types.ValidationException]},
		{"max results 51", func() error {
			_, err := l.client.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{MaxResults: aws.Int32(51)})
			return err
		}, is[*types.ValidationException]},
		{"unknown filter key", func() error {
			_, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{Filters: []types.CommandFilter{{Key: "Owner", Value: aws.String("me")}}})
			return err
		}, is[*types.InvalidFilterKey]},
		{"execution stage on invocations", func() error {
			_, err := l.client.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyExecutionStage, Value: aws.String("Complete")}}})
			return err
		}, is[*types.InvalidFilterKey]},
		{"invocation status on commands", func() error {
			_, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyStatus, Value: aws.String("Undeliverable")}}})
			return err
		}, is[*types.InvalidFilterKey]},
		{"command status on invocations", func() error {
			_, err := l.client.ListCommandInvocations(ctx, &ssm.ListCommandInvocationsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyStatus, Value: aws.String("NoInstancesInTag")}}})
			return err
		}, is[*types.InvalidFilterKey]},
		{"bad timestamp", func() error {
			_, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyInvokedAfter, Value: aws.String("yesterday")}}})
			return err
		}, is[*types.InvalidFilterKey]},
		{"unknown command", func() error {
			_, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: aws.String("00000000-0000-4000-8000-000000000000")})
			return err
		}, is[*types.InvalidCommandId]},
		{"instance with status pending", func() error {
			_, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{InstanceId: aws.String(id),
				Filters: []types.CommandFilter{{Key: types.CommandFilterKeyStatus, Value: aws.String("Pending")}}})
			return err
		}, is[*types.ValidationException]},
		{"malformed instance", func() error {
			_, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{InstanceId: aws.String("host-1")})
			return err
		}, is[*types.ValidationException]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !tt.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestListCommandsFilters(t *testing.T) {
	l := newLab(t)
	linux, failing := l.add(node.Linux, nil)
	windows, _ := l.add(node.Windows, nil)
	failing.SetAnswer(2, "", "no")
	early := l.send(&ssm.SendCommandInput{InstanceIds: []string{linux}})
	l.clock.Advance(time.Hour)
	late := l.send(&ssm.SendCommandInput{DocumentName: aws.String("AWS-RunPowerShellScript"), InstanceIds: []string{windows}})
	l.waitCommand(*early.CommandId, "Failed")
	l.waitCommand(*late.CommandId, "Success")
	cut := l.clock.Now().Add(-time.Minute).Format(time.RFC3339)
	l.clock.Advance(time.Minute)
	nobody := l.send(&ssm.SendCommandInput{Targets: []types.Target{{Key: aws.String("tag:Role"), Values: []string{"nobody"}}}})
	status := func(v string) *ssm.ListCommandsInput {
		return &ssm.ListCommandsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyStatus, Value: aws.String(v)}}}
	}

	tests := []struct {
		name    string
		in      *ssm.ListCommandsInput
		wantIDs []string
	}{
		{"all, newest first", &ssm.ListCommandsInput{}, []string{*nobody.CommandId, *late.CommandId, *early.CommandId}},
		{"invoked after", &ssm.ListCommandsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyInvokedAfter, Value: aws.String(cut)}}}, []string{*nobody.CommandId, *late.CommandId}},
		{"invoked before", &ssm.ListCommandsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyInvokedBefore, Value: aws.String(cut)}}}, []string{*early.CommandId}},
		{"status", status("Failed"), []string{*nobody.CommandId, *early.CommandId}},
		// The status details ListCommands documents as filter values.
		{"status NoInstancesInTag", status("NoInstancesInTag"), []string{*nobody.CommandId}},
		{"status Incomplete", status("Incomplete"), nil},
		{"status AccessDenied", status("AccessDenied"), nil},
		{"status DeliveryTimedOut", status("DeliveryTimedOut"), nil},
		{"status ExecutionTimedOut", status("ExecutionTimedOut"), nil},
		{"status LimitExceeded", status("LimitExceeded"), nil},
		{"document", &ssm.ListCommandsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyDocumentName, Value: aws.String("AWS-RunPowerShellScript")}}}, []string{*late.CommandId}},
		{"execution stage", &ssm.ListCommandsInput{Filters: []types.CommandFilter{{Key: types.CommandFilterKeyExecutionStage, Value: aws.String("Executing")}}}, nil},
		{"instance", &ssm.ListCommandsInput{InstanceId: aws.String(linux)}, []string{*early.CommandId}},
		{"command id", &ssm.ListCommandsInput{CommandId: early.CommandId}, []string{*early.CommandId}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := l.client.ListCommands(context.Background(), tt.in)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range out.Commands {
				got = append(got, aws.ToString(c.CommandId))
			}
			if strings.Join(got, ",") != strings.Join(tt.wantIDs, ",") {
				t.Fatalf("got %v, want %v", got, tt.wantIDs)
			}
		})
	}
}

func TestISODuration(t *testing.T) {
	tests := map[time.Duration]string{
		0:                                     "PT0S",
		91 * time.Millisecond:                 "PT0.091S",
		time.Second:                           "PT1S",
		60*time.Second + 500*time.Millisecond: "PT1M0.5S",
		2*time.Hour + 3*time.Minute + 4*time.Second: "PT2H3M4S",
		time.Hour: "PT1H",
	}
	for d, want := range tests {
		if got := isoDuration(d); got != want {
			t.Errorf("isoDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestCommandsAreForgottenAfter30Days(t *testing.T) {
	l := newLab(t)
	id, _ := l.add(node.Linux, nil)
	old := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	l.waitCommand(*old.CommandId, "Success")
	l.clock.Advance(30*24*time.Hour + time.Second)
	l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	_, err := l.client.GetCommandInvocation(context.Background(), &ssm.GetCommandInvocationInput{CommandId: old.CommandId, InstanceId: aws.String(id)})
	if !is[*types.InvocationDoesNotExist](err) {
		t.Fatalf("a command older than 30 days is still there: %v", err)
	}
}

// panicking is a model node whose agent crashes while running a script.
type panicking struct{ *node.Model }

func (panicking) Run(context.Context, node.Script) (node.Result, error) { panic("agent bug") }

func TestNodePanicFailsTheInvocation(t *testing.T) {
	l := newLab(t)
	const id = "i-0000000000000c0de"
	l.svc.AddNode(panicking{node.NewModel(node.Info{InstanceID: id, PlatformType: node.Linux})})
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	out := l.waitDetail(*cmd.CommandId, id, "Failed")
	if !strings.Contains(aws.ToString(out.StandardErrorContent), "agent failed") {
		t.Fatalf("stderr %q does not say the agent failed", aws.ToString(out.StandardErrorContent))
	}
}

func TestInvocationsCanAppearLate(t *testing.T) {
	l := newLab(t, func(c *Config) { c.InvocationDelay = 2 * time.Second })
	id, _ := l.add(node.Linux, nil)
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}})
	_, err := l.client.GetCommandInvocation(context.Background(), &ssm.GetCommandInvocationInput{CommandId: cmd.CommandId, InstanceId: aws.String(id)})
	if !is[*types.InvocationDoesNotExist](err) {
		t.Fatalf("right after SendCommand: %v, want InvocationDoesNotExist", err)
	}
	l.clock.Advance(2 * time.Second)
	l.waitDetail(*cmd.CommandId, id, "Success")
}
