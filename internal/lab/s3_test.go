package lab

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// TestAgentWritesOutputWithTheInstanceRole: the lab's agent writes Run
// Command output to S3 as the instance's role, whose policy is the one
// Passport ships for instance profiles: under the recordings bucket's
// transfer prefix it may, anywhere else (over a collected recording, say)
// it may not, and the command says so on stderr.
func TestAgentWritesOutputWithTheInstanceRole(t *testing.T) {
	l := startLab(t, Options{ModelNodes: 1})
	m := l.Models[0]
	m.SetAnswer(0, "a host's bundle", "")
	c := ssm.NewFromConfig(l.AWSConfig())
	ctx := context.Background()
	run := func(prefix string) *ssm.GetCommandInvocationOutput {
		t.Helper()
		out, err := c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{m.Info().InstanceID},
			Parameters: map[string][]string{"commands": {"cat bundle"}}, OutputS3BucketName: aws.String(RecordingsBucket), OutputS3KeyPrefix: aws.String(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		w := ssm.NewCommandExecutedWaiter(c, func(o *ssm.CommandExecutedWaiterOptions) {
			o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
		})
		inv, err := w.WaitForOutput(ctx, &ssm.GetCommandInvocationInput{CommandId: out.Command.CommandId, InstanceId: aws.String(m.Info().InstanceID)}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	inv := run("recordings/.transfer")
	if key := strings.TrimPrefix(aws.ToString(inv.StandardOutputUrl), "https://s3."+l.Region+".amazonaws.com/"+RecordingsBucket+"/"); key == "" {
		t.Fatalf("no output object: %+v", inv)
	} else if data, ok := l.S3.Object(RecordingsBucket, key); !ok || string(data) != "a host's bundle" {
		t.Errorf("the transfer object %s holds %q", key, data)
	}
	inv = run("recordings/ar-collected/i-0123456789abcdef0")
	if aws.ToString(inv.StandardOutputUrl) != "" || !strings.Contains(aws.ToString(inv.StandardErrorContent), "AccessDenied") {
		t.Errorf("the agent wrote outside the transfer prefix: url %q, stderr %q", aws.ToString(inv.StandardOutputUrl), aws.ToString(inv.StandardErrorContent))
	}
}
