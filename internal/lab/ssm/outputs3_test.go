package ssm

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// bucketStub keeps what the agent uploads, as the lab's S3 does.
type bucketStub struct {
	mu      sync.Mutex
	objects map[string][]byte
	refuse  bool
}

func (b *bucketStub) put(bucket, key string, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse {
		return errors.New("AccessDenied: the instance's role may not write there")
	}
	b.objects[bucket+"/"+key] = bytes.Clone(data)
	return nil
}

// TestOutputToS3: a command that names an output bucket has each host's
// whole stdout and stderr written there by the agent, under
// <prefix>/<command>/<instance>/<plugin>/<step>/, while the API still
// reports only the first 24,000 characters; GetCommandInvocation names
// the objects. An upload the bucket refuses is reported on stderr.
func TestOutputToS3(t *testing.T) {
	b := &bucketStub{objects: map[string][]byte{}}
	l := newLab(t, func(c *Config) { c.PutOutput = b.put })
	id, n := l.add(node.Linux, nil)
	long := strings.Repeat("0123456789", 5000) // 50,000 characters, over the API's 24,000
	n.SetAnswer(0, long, "a warning")
	cmd := l.send(&ssm.SendCommandInput{InstanceIds: []string{id}, OutputS3BucketName: aws.String("passport-recordings"),
		OutputS3KeyPrefix: aws.String("recordings/.transfer")})
	var inv *ssm.GetCommandInvocationOutput
	l.eventually("the command ends", func() error {
		out, err := l.client.GetCommandInvocation(context.Background(), &ssm.GetCommandInvocationInput{CommandId: cmd.CommandId, InstanceId: aws.String(id)})
		if err != nil {
			return err
		}
		if out.Status != types.CommandInvocationStatusSuccess {
			return errors.New(string(out.Status))
		}
		inv = out
		return nil
	})
	if !n.runs()[0].WholeStdout {
		t.Error("the host was not told to keep its whole stdout for S3")
	}
	dir := "recordings/.transfer/" + aws.ToString(cmd.CommandId) + "/" + id + "/awsrunShellScript/0.awsrunShellScript/"
	if got := b.objects["passport-recordings/"+dir+"stdout"]; string(got) != long {
		t.Errorf("the stdout object holds %d bytes, want all %d; objects: %v", len(got), len(long), keys(b.objects))
	}
	if got := b.objects["passport-recordings/"+dir+"stderr"]; string(got) != "a warning" {
		t.Errorf("the stderr object holds %q", got)
	}
	if len(aws.ToString(inv.StandardOutputContent)) != 24000 {
		t.Errorf("the API reported %d characters of stdout, want 24,000", len(aws.ToString(inv.StandardOutputContent)))
	}
	if u := aws.ToString(inv.StandardOutputUrl); !strings.HasSuffix(u, "/passport-recordings/"+dir+"stdout") {
		t.Errorf("StandardOutputUrl = %q", u)
	}

	b.refuse = true
	cmd = l.send(&ssm.SendCommandInput{InstanceIds: []string{id}, OutputS3BucketName: aws.String("passport-recordings")})
	l.eventually("the refused upload is reported", func() error {
		out, err := l.client.GetCommandInvocation(context.Background(), &ssm.GetCommandInvocationInput{CommandId: cmd.CommandId, InstanceId: aws.String(id)})
		if err != nil {
			return err
		}
		if !strings.Contains(aws.ToString(out.StandardErrorContent), "failed to upload stdout to s3://passport-recordings/") {
			return errors.New("stderr: " + aws.ToString(out.StandardErrorContent))
		}
		return nil
	})
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
