package fleet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// startMoto runs moto_server, an independent implementation of the SSM
// API, on a free loopback port and returns its endpoint.
func startMoto(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skip("moto_server is not installed (pip install 'moto[server]'); it checks fleet against an SSM that is not ours")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting moto_server: %v", err)
	}
	t.Cleanup(func() {
		// moto_server may fork a reloader: end its whole process group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		_ = cmd.Wait()
	})
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return endpoint
		}
		if time.Now().After(deadline) {
			t.Fatalf("moto_server did not answer on %s within 30s: %v", endpoint, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMoto checks fleet's requests against moto, which implements
// SendCommand, ListCommands and GetCommandInvocation but (as of 5.2) not
// DescribeInstanceInformation, ListCommandInvocations or CancelCommand, and
// runs no scripts. The whole of Run is tested against the lab.
func TestMoto(t *testing.T) {
	if testing.Short() {
		t.Skip("moto_server takes seconds to start; skipped with -short")
	}
	endpoint := startMoto(t)
	c := sdkClient(endpoint, "AKIDMOTO", "moto-secret", 0)
	r := New(c, Options{ThrottleBackoff: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond})
	ctx := context.Background()

	t.Run("nothing is sent when the inventory cannot be read", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		results, err := runBounded(t, r, ctx, Job{Targets: testIDs(3), Script: "true"})
		if err == nil {
			t.Fatalf("Run without an inventory returned %v and no error", results)
		}
		t.Logf("Run: %v", err)
		out, err := c.ListCommands(context.Background(), &ssm.ListCommandsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Commands) != 0 {
			t.Errorf("%d commands were sent although the targets could not be checked", len(out.Commands))
		}
	})

	t.Run("batches carry the job", func(t *testing.T) {
		job, err := Job{Targets: testIDs(120), Script: "echo hi\nexit 0\n", Comment: "passport grant g-1",
			ExecutionTimeout: 90 * time.Second, DeliveryTimeout: 45 * time.Second}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		tl := &tally{results: map[string]Result{}}
		cmds := r.send(ctx, job, job.Targets, tl)
		if len(tl.results) != 0 {
			t.Fatalf("moto refused hosts: %v", tl.results)
		}
		if len(cmds) != 3 {
			t.Fatalf("120 targets went out in %d commands, want 3", len(cmds))
		}
		out, err := c.ListCommands(ctx, &ssm.ListCommandsInput{})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, cmd := range out.Commands {
			if n := len(cmd.InstanceIds); n > maxBatch {
				t.Errorf("command %s has %d instances, SSM allows %d", aws.ToString(cmd.CommandId), n, maxBatch)
			}
			for _, id := range cmd.InstanceIds {
				seen[id]++
			}
			for name, got := range map[string]string{
				"DocumentName":     aws.ToString(cmd.DocumentName),
				"commands":         fmt.Sprint(cmd.Parameters["commands"]),
				"executionTimeout": fmt.Sprint(cmd.Parameters["executionTimeout"]),
				"TimeoutSeconds":   fmt.Sprint(aws.ToInt32(cmd.TimeoutSeconds)),
				"MaxErrors":        aws.ToString(cmd.MaxErrors),
				"MaxConcurrency":   aws.ToString(cmd.MaxConcurrency),
				"Comment":          aws.ToString(cmd.Comment),
			} {
				want := map[string]string{
					"DocumentName":     ShellScript,
					"commands":         "[echo hi\nexit 0\n]",
					"executionTimeout": "[90]",
					"TimeoutSeconds":   "45",
					"MaxErrors":        "100%",
					"MaxConcurrency":   "100%",
					"Comment":          "passport grant g-1",
				}[name]
				if got != want {
					t.Errorf("command %s: %s = %q, want %q", aws.ToString(cmd.CommandId), name, got, want)
				}
			}
		}
		for _, id := range job.Targets {
			if seen[id] != 1 {
				t.Errorf("%s was sent %d times, want once", id, seen[id])
			}
		}

		// moto reports every command finished at once and ignores the
		// InvokedAfter filter: poll must still pick exactly its own.
		done, _, err := r.poll(ctx, cmds, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(done) != len(cmds) {
			t.Errorf("poll found %d of %d finished commands", len(done), len(cmds))
		}
	})
}
