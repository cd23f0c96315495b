package fleet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	labssm "github.com/passport-access/terraform-provider-passport/internal/lab/ssm"
)

// sdkClient is the real SSM client pointed at a local endpoint. Its retryer
// is the standard one with short waits, so throttling tests need not sleep
// for seconds; attempts sets how often it tries (0 keeps the default).
func sdkClient(endpoint, accessKey, secret string, attempts int) *ssm.Client {
	return ssm.New(ssm.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secret, ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 5 * time.Millisecond, nil })
			if attempts > 0 {
				o.MaxAttempts = attempts
			}
		}),
	})
}

// testIDs returns n distinct well-formed instance ids.
func testIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("i-%017x", 0xabc00000+i)
	}
	return ids
}

// lab is the lab's SSM service on a loopback endpoint with model nodes,
// and the real SDK client signed for it.
type lab struct {
	srv    *awsjson.Server
	svc    *labssm.Service
	client *ssm.Client
	ids    []string
	nodes  map[string]*node.Model
}

const (
	labAccessKey = "AKIDFLEETTEST0000000"
	labSecret    = "fleet-test-secret"
)

// startLab registers n online Linux model nodes. attempts is the SDK
// client's MaxAttempts (0 keeps the default).
func startLab(t testing.TB, n, attempts int) *lab {
	t.Helper()
	return startLabClock(t, n, attempts, nil)
}

// startLabClock is startLab with the SSM service's clock, which decides
// delivery timeouts, set to now.
func startLabClock(t testing.TB, n, attempts int, now func() time.Time) *lab {
	t.Helper()
	return startLabConfig(t, n, attempts, labssm.Config{Region: "us-east-1", Now: now})
}

func startLabConfig(t testing.TB, n, attempts int, cfg labssm.Config) *lab {
	t.Helper()
	srv := awsjson.NewServer(awsjson.Config{Region: "us-east-1", Credentials: map[string]string{labAccessKey: labSecret}})
	svc := labssm.New(cfg)
	t.Cleanup(svc.Close)
	srv.Register(svc.API())
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	l := &lab{srv: srv, svc: svc, client: sdkClient(hs.URL, labAccessKey, labSecret, attempts), nodes: map[string]*node.Model{}}
	for i, id := range testIDs(n) {
		l.add(id, node.Info{InstanceID: id, ComputerName: fmt.Sprintf("host-%d", i), IPAddress: fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), PlatformName: "Debian GNU/Linux"})
	}
	return l
}

func (l *lab) add(id string, info node.Info) *node.Model {
	m := node.NewModel(info)
	l.svc.AddNode(m)
	l.ids = append(l.ids, id)
	l.nodes[id] = m
	return m
}

// fastOptions poll and back off in milliseconds, for model nodes that
// answer at once.
var fastOptions = Options{FirstPoll: 20 * time.Millisecond, MaxPoll: 100 * time.Millisecond, ThrottleBackoff: 10 * time.Millisecond}

// commandsTo returns how many commands the lab received for an instance.
func (l *lab) commandsTo(t *testing.T, id string) int {
	t.Helper()
	out, err := l.client.ListCommands(context.Background(), &ssm.ListCommandsInput{InstanceId: aws.String(id)})
	if err != nil {
		t.Fatalf("ListCommands for %s: %v", id, err)
	}
	return len(out.Commands)
}

// runBounded is r.Run, failing the test when Run has not returned within
// two minutes: a hang becomes a failure. How soon Run returns is for the
// benchmarks; a test that needs Run not to wait for something makes that
// something take far longer than this.
func runBounded(t *testing.T, r *Runner, ctx context.Context, job Job) ([]Result, error) {
	t.Helper()
	type outcome struct {
		results []Result
		err     error
	}
	done := make(chan outcome, 1)
	go func() {
		results, err := r.Run(ctx, job)
		done <- outcome{results, err}
	}()
	select {
	case o := <-done:
		return o.results, o.err
	case <-time.After(2 * time.Minute):
		t.Fatalf("Run of %d targets did not return within two minutes", len(job.Targets))
		return nil, nil
	}
}

func run(t *testing.T, r *Runner, ctx context.Context, job Job) []Result {
	t.Helper()
	results, err := runBounded(t, r, ctx, job)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != len(job.Targets) {
		t.Fatalf("Run returned %d results for %d targets", len(results), len(job.Targets))
	}
	for i, res := range results {
		if res.InstanceID != job.Targets[i] {
			t.Fatalf("result %d is for %s, want %s (results must follow Targets)", i, res.InstanceID, job.Targets[i])
		}
		if !strings.HasPrefix(res.Reason, res.InstanceID+": ") {
			t.Errorf("reason %q does not name the host first", res.Reason)
		}
	}
	return results
}

// faultyFront puts a proxy in front of the lab that passes every call on
// but replaces the answers to the named operations with status and body,
// as when a network or a permission boundary gets in the way. It returns
// the proxy's endpoint.
func (l *lab) faultyFront(t *testing.T, status int, body string, operations ...string) string {
	t.Helper()
	upstream, err := url.Parse(l.clientEndpoint(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(upstream)
	proxy.ModifyResponse = func(resp *http.Response) error {
		target := strings.TrimPrefix(resp.Request.Header.Get("X-Amz-Target"), "AmazonSSM.")
		if slices.Contains(operations, target) {
			resp.Body.Close()
			resp.StatusCode = status
			resp.Body = io.NopCloser(strings.NewReader(body))
			resp.ContentLength = -1
			resp.Header.Del("Content-Length")
		}
		return nil
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	return front.URL
}

func (l *lab) clientEndpoint(t *testing.T) string {
	t.Helper()
	return aws.ToString(l.client.Options().BaseEndpoint)
}
