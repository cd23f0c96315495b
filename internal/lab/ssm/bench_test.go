package ssm

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// BenchmarkSendCommandFanOut sends one command to 200 model nodes through
// the SDK and waits until every invocation has succeeded, against a
// baseline measured in the same run: the same 200 Run calls made directly
// in goroutines. x_direct_run is what the service adds around the nodes.
func BenchmarkSendCommandFanOut(b *testing.B) {
	const nodes = 200
	l := newLab(b)
	var models []node.Node
	for i := range nodes {
		m := node.NewModel(node.Info{InstanceID: fmt.Sprintf("i-%017x", 0xf00000+i), PlatformType: node.Linux, Tags: map[string]string{"Fleet": "bench"}})
		l.svc.AddNode(m)
		models = append(models, m)
	}
	ctx := context.Background()
	script := node.Script{Document: "AWS-RunShellScript", Source: "true", Timeout: time.Minute}

	start := time.Now()
	for range b.N {
		var wg sync.WaitGroup
		for _, m := range models {
			wg.Go(func() { m.Run(ctx, script) })
		}
		wg.Wait()
	}
	baseline := time.Since(start)

	b.ResetTimer()
	start = time.Now()
	for range b.N {
		out, err := l.client.SendCommand(ctx, &ssm.SendCommandInput{
			DocumentName:   aws.String("AWS-RunShellScript"),
			Targets:        []types.Target{{Key: aws.String("tag:Fleet"), Values: []string{"bench"}}},
			Parameters:     map[string][]string{"commands": {"true"}},
			MaxConcurrency: aws.String("100%"),
		})
		if err != nil {
			b.Fatal(err)
		}
		for {
			c, err := l.client.ListCommands(ctx, &ssm.ListCommandsInput{CommandId: out.Command.CommandId})
			if err != nil {
				b.Fatal(err)
			}
			if c.Commands[0].CompletedCount == nodes {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	b.ReportMetric(float64(time.Since(start))/float64(baseline), "x_direct_run")
}
