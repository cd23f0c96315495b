package ssm

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

const (
	testRegion  = "eu-central-1"
	testAccount = "111122223333"
	testKey     = "AKIDLABSSMTEST000001"
	testSecret  = "ssm-lab-test-secret-0123456789abcdefghij"
)

// lab is an SSM service behind a real awsjson server on loopback, and an
// SDK client for it.
type lab struct {
	t      testing.TB
	clock  *clock.Fake
	svc    *Service
	server *awsjson.Server
	url    string
	client *ssm.Client
	next   int
}

func newLab(t testing.TB, options ...func(*Config)) *lab {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 1, 24, 2, 0, 0, 0, time.UTC))
	cfg := Config{Region: testRegion, AccountID: testAccount, Now: clk.Now, PollInterval: 5 * time.Millisecond}
	for _, o := range options {
		o(&cfg)
	}
	svc := New(cfg)
	// SigV4 is checked against real time: the SDK signs with the real clock.
	server := awsjson.NewServer(awsjson.Config{Region: testRegion, Credentials: map[string]string{testKey: testSecret}})
	server.Register(svc.API())
	srv := httptest.NewServer(server)
	t.Cleanup(func() {
		srv.Close()
		svc.Close()
	})
	l := &lab{t: t, clock: clk, svc: svc, server: server, url: srv.URL}
	l.client = l.newClient(testSecret)
	return l
}

type instantBackoff struct{}

func (instantBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func (l *lab) newClient(secret string) *ssm.Client {
	return ssm.New(ssm.Options{
		Region:       testRegion,
		BaseEndpoint: aws.String(l.url),
		Credentials:  credentials.NewStaticCredentialsProvider(testKey, secret, ""),
		Retryer:      retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = instantBackoff{} }),
	})
}

// recorder is a model node that remembers the scripts it was given and how
// many ran at once.
type recorder struct {
	*node.Model
	mu      sync.Mutex
	scripts []node.Script
	gauge   *gauge        // shared across nodes to measure concurrency
	gate    chan struct{} // when set, scripts wait for it to close
	ended   int           // Run calls that have returned
}

// gauge counts scripts running at once across the nodes that share it.
type gauge struct {
	mu        sync.Mutex
	cur, high int
}

func (g *gauge) inc(d int) {
	g.mu.Lock()
	g.cur += d
	g.high = max(g.high, g.cur)
	g.mu.Unlock()
}

func (g *gauge) peak() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.high
}

func (r *recorder) Run(ctx context.Context, s node.Script) (node.Result, error) {
	r.mu.Lock()
	r.scripts = append(r.scripts, s)
	g, gate := r.gauge, r.gate
	r.mu.Unlock()
	if g != nil {
		g.inc(1)
		defer g.inc(-1)
	}
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return node.Result{}, ctx.Err()
		}
	}
	defer func() {
		r.mu.Lock()
		r.ended++
		r.mu.Unlock()
	}()
	return r.Model.Run(ctx, s)
}

func (r *recorder) returned() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended
}

func (r *recorder) runs() []node.Script {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]node.Script(nil), r.scripts...)
}

// add registers a model node with a fresh instance id.
func (l *lab) add(platform string, tags map[string]string) (string, *recorder) {
	l.next++
	id := fmt.Sprintf("i-%017x", 0xabc000+l.next)
	r := &recorder{Model: node.NewModel(node.Info{
		InstanceID:      id,
		ComputerName:    fmt.Sprintf("host-%d.lab.internal", l.next),
		IPAddress:       fmt.Sprintf("127.0.10.%d", l.next),
		PlatformType:    platform,
		PlatformName:    map[string]string{node.Linux: "Debian GNU/Linux", node.Windows: "Microsoft Windows Server 2022 Datacenter"}[platform],
		PlatformVersion: "12",
		AgentVersion:    "3.3.1000.0",
		Tags:            tags,
	})}
	l.svc.AddNode(r)
	return id, r
}

func (l *lab) send(in *ssm.SendCommandInput) *types.Command {
	l.t.Helper()
	if in.DocumentName == nil {
		in.DocumentName = aws.String("AWS-RunShellScript")
	}
	if in.Parameters == nil {
		in.Parameters = map[string][]string{"commands": {"echo hello"}}
	}
	out, err := l.client.SendCommand(context.Background(), in)
	if err != nil {
		l.t.Fatalf("SendCommand: %v", err)
	}
	return out.Command
}

// eventually polls until check succeeds, for results that dispatcher
// goroutines produce; it fails the test after a few seconds.
// inProgress counts the command's invocations the lab has started and
// not yet seen end.
func (l *lab) inProgress(id string) int {
	l.svc.mu.Lock()
	defer l.svc.mu.Unlock()
	n := 0
	for _, inv := range l.svc.commands[id].invocations {
		if inv.detail == detailInProgress {
			n++
		}
	}
	return n
}

// step runs the command's dispatcher step once, now, as its goroutine
// does on every tick: what the lab decides at the fake clock's current
// time, without waiting for a tick to come round.
func (l *lab) step(id string) {
	l.t.Helper()
	l.svc.mu.Lock()
	defer l.svc.mu.Unlock()
	c := l.svc.commands[id]
	if c == nil {
		l.t.Fatalf("no command %s", id)
	}
	l.svc.step(c)
}

// eventually polls check until it passes, for at most a minute.
func (l *lab) eventually(what string, check func() error) {
	l.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *lab) invocation(commandID, instanceID string) *ssm.GetCommandInvocationOutput {
	l.t.Helper()
	out, err := l.client.GetCommandInvocation(context.Background(), &ssm.GetCommandInvocationInput{CommandId: aws.String(commandID), InstanceId: aws.String(instanceID)})
	if err != nil {
		l.t.Fatalf("GetCommandInvocation: %v", err)
	}
	return out
}

// waitDetail waits until an invocation reports the given StatusDetails.
func (l *lab) waitDetail(commandID, instanceID, detail string) *ssm.GetCommandInvocationOutput {
	l.t.Helper()
	var out *ssm.GetCommandInvocationOutput
	l.eventually(fmt.Sprintf("invocation on %s reaching %s", instanceID, detail), func() error {
		out = l.invocation(commandID, instanceID)
		if got := aws.ToString(out.StatusDetails); got != detail {
			return fmt.Errorf("StatusDetails %s", got)
		}
		return nil
	})
	return out
}

func (l *lab) command(id string) types.Command {
	l.t.Helper()
	out, err := l.client.ListCommands(context.Background(), &ssm.ListCommandsInput{CommandId: aws.String(id)})
	if err != nil {
		l.t.Fatalf("ListCommands: %v", err)
	}
	if len(out.Commands) != 1 {
		l.t.Fatalf("ListCommands returned %d commands for %s", len(out.Commands), id)
	}
	return out.Commands[0]
}

// waitCommand waits until the command's StatusDetails is detail.
func (l *lab) waitCommand(id, detail string) types.Command {
	l.t.Helper()
	var c types.Command
	l.eventually("command reaching "+detail, func() error {
		c = l.command(id)
		if got := aws.ToString(c.StatusDetails); got != detail {
			return fmt.Errorf("StatusDetails %s (Status %s)", got, c.Status)
		}
		return nil
	})
	return c
}

// wantCode checks that err is the SDK's typed error T, or, for codes the
// SDK does not model, a smithy.APIError with that code.
func wantAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("got error %v, want %s", err, code)
	}
}

func ids(n int, l *lab, platform string, tags map[string]string) ([]string, []*recorder) {
	var is []string
	var rs []*recorder
	for range n {
		id, r := l.add(platform, tags)
		is = append(is, id)
		rs = append(rs, r)
	}
	return is, rs
}

// is reports whether err is (or wraps) the SDK's typed error T.
func is[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}
