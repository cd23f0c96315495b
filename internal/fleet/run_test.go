package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	labssm "github.com/passport-access/terraform-provider-passport/internal/lab/ssm"
)

func TestRunOutcomes(t *testing.T) {
	l := startLab(t, 3, 0)
	ok, failing, offline := l.ids[0], l.ids[1], l.ids[2]
	l.nodes[ok].SetAnswer(0, "created pp-abc\n", "")
	l.nodes[failing].SetAnswer(3, "checking\n", "useradd: user 'pp-abc' already exists\n")
	l.nodes[offline].SetOnline(false)
	windows := testIDs(4)[3]
	l.add(windows, node.Info{InstanceID: windows, PlatformType: node.Windows, PlatformName: "Microsoft Windows Server 2022"})
	unknown := "i-0fedcba9876543210"

	job := Job{Targets: []string{ok, failing, offline, unknown, windows}, Script: "useradd pp-abc", Comment: "grant g-1"}
	results := run(t, New(l.client, fastOptions), context.Background(), job)

	want := []struct {
		outcome        Outcome
		exit           int
		stdout, stderr string
		reason         string
	}{
		{Success, 0, "created pp-abc\n", "", ok + ": the script succeeded"},
		{Failed, 3, "checking\n", "useradd: user 'pp-abc' already exists\n", failing + ": the script exited 3: useradd: user 'pp-abc' already exists"},
		{Offline, -1, "", "", offline + ": SSM agent is not connected (PingStatus ConnectionLost); start the instance or check its agent"},
		{UnknownInstance, -1, "", "", unknown + ": not a managed node in this account and region; check the instance id and region, and that its SSM agent is installed and registered"},
		{Undeliverable, -1, "", "", windows + ": is a Windows node, and AWS-RunShellScript runs only on Linux and macOS; use AWS-RunPowerShellScript"},
	}
	for i, w := range want {
		got := results[i]
		if got.Outcome != w.outcome || got.ExitCode != w.exit || got.Stdout != w.stdout || got.Stderr != w.stderr || got.Reason != w.reason {
			t.Errorf("%s:\n got %+v\nwant %+v", got.InstanceID, got, w)
		}
		if sent := got.CommandID != ""; sent != (i < 2) {
			t.Errorf("%s: CommandID %q", got.InstanceID, got.CommandID)
		}
	}
	for _, id := range []string{offline, windows} {
		if n := l.commandsTo(t, id); n != 0 {
			t.Errorf("%s was sent %d commands; hosts that cannot run the script must be sent nothing", id, n)
		}
	}
}

func TestRunNothingToSend(t *testing.T) {
	l := startLab(t, 2, 0)
	for _, m := range l.nodes {
		m.SetOnline(false)
	}
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "true"})
	for _, res := range results {
		if res.Outcome != Offline {
			t.Errorf("%s: %s", res.InstanceID, res.Reason)
		}
	}
	if calls := l.srv.Calls(); totalCalls(calls) != 1 {
		t.Errorf("with every host offline Run made %v; the inventory alone is enough", calls)
	}
}

func TestRunPowerShell(t *testing.T) {
	l := startLab(t, 0, 0)
	id := testIDs(1)[0]
	l.add(id, node.Info{InstanceID: id, PlatformType: node.Windows, PlatformName: "Microsoft Windows Server 2022"}).SetAnswer(0, "created\r\n", "")
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Document: PowerShellScript, Script: "New-LocalUser pp-abc"})
	if res := results[0]; res.Outcome != Success || res.Stdout != "created\r\n" {
		t.Errorf("%+v", res)
	}
}

func TestRunBatches(t *testing.T) {
	l := startLab(t, 120, 0)
	for _, m := range l.nodes {
		m.SetAnswer(0, "ok\n", "")
	}
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "true"})
	commands := map[string]int{}
	for _, res := range results {
		if res.Outcome != Success || res.Stdout != "ok\n" {
			t.Errorf("%s: %+v", res.InstanceID, res)
		}
		commands[res.CommandID]++
	}
	if len(commands) != 3 {
		t.Errorf("120 hosts went out in %d commands, want 3 of at most 50: %v", len(commands), commands)
	}
	calls := l.srv.Calls()
	for op, want := range map[string]int{"DescribeInstanceInformation": 3, "SendCommand": 3, "ListCommandInvocations": 3, "GetCommandInvocation": 0} {
		if got := calls["AmazonSSM."+op]; got != want {
			t.Errorf("%s called %d times, want %d", op, got, want)
		}
	}
}

func TestRunReadsCutOutput(t *testing.T) {
	l := startLab(t, 3, 0)
	long, title, short := l.ids[0], l.ids[1], l.ids[2]
	longOut := strings.Repeat("line of output\n", 400)
	longErr := strings.Repeat("warning: something\n", 200)
	l.nodes[long].SetAnswer(1, longOut, longErr)
	// A script that prints the agent's stderr title itself makes the
	// combined output ambiguous.
	titleOut := "before" + stderrTitle + "after\n"
	l.nodes[title].SetAnswer(0, titleOut, "real stderr\n")
	l.nodes[short].SetAnswer(0, "ok\n", "")

	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "cat big"})
	for _, c := range []struct {
		res            Result
		stdout, stderr string
	}{
		{results[0], longOut, longErr},
		{results[1], titleOut, "real stderr\n"},
		{results[2], "ok\n", ""},
	} {
		if c.res.Stdout != c.stdout || c.res.Stderr != c.stderr {
			t.Errorf("%s: got stdout %d bytes, stderr %d bytes; want %d and %d", c.res.InstanceID, len(c.res.Stdout), len(c.res.Stderr), len(c.stdout), len(c.stderr))
		}
	}
	if want := l.ids[0] + ": the script exited 1: warning: something"; results[0].Reason != want {
		t.Errorf("reason %q, want %q", results[0].Reason, want)
	}
	if n := l.srv.Calls()["AmazonSSM.GetCommandInvocation"]; n != 2 {
		t.Errorf("GetCommandInvocation called %d times, want 2: only for the cut and the ambiguous output", n)
	}
}

// TestRunReadsOutputNotYetVisible asks for a full output while SSM still
// denies knowing the invocation, as AWS does just after SendCommand.
func TestRunReadsOutputNotYetVisible(t *testing.T) {
	l := startLabConfig(t, 1, 0, labssm.Config{InvocationDelay: 300 * time.Millisecond})
	long := strings.Repeat("x", 3000)
	l.nodes[l.ids[0]].SetAnswer(0, long, "")
	results := run(t, New(l.client, fastOptions), context.Background(), Job{Targets: l.ids, Script: "cat big"})
	if got := results[0]; got.Outcome != Success || got.Stdout != long {
		t.Errorf("got %s with %d bytes of stdout, want success with %d", got.Outcome, len(got.Stdout), len(long))
	}
}

// TestSendSplitsRefusedBatch covers an instance that stops being a managed
// node between the inventory and SendCommand: SSM refuses its whole batch,
// and the others must still get the script.
func TestSendSplitsRefusedBatch(t *testing.T) {
	l := startLab(t, 10, 0)
	gone := l.ids[6]
	l.svc.RemoveNode(gone)
	job, err := Job{Targets: l.ids, Script: "true"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	r := New(l.client, fastOptions)
	tl := &tally{results: map[string]Result{}}
	cmds := r.send(context.Background(), job, job.Targets, tl)
	r.await(context.Background(), job, cmds, tl)
	for _, id := range l.ids {
		res := tl.results[id]
		switch {
		case id == gone && res.Outcome != Undeliverable:
			t.Errorf("deregistered %s: %+v", id, res)
		case id != gone && res.Outcome != Success:
			t.Errorf("%s: %s", id, res.Reason)
		}
	}
	t.Logf("%s", tl.results[gone].Reason)
}

func TestInventory(t *testing.T) {
	l := startLab(t, 70, 0)
	l.nodes[l.ids[5]].SetOnline(false)
	r := New(l.client, fastOptions)
	inv, err := r.Inventory(context.Background(), l.ids)
	if err != nil {
		t.Fatal(err)
	}
	want := Target{InstanceID: l.ids[0], Known: true, PingStatus: "Online", PlatformType: "Linux", PlatformName: "Debian GNU/Linux", ComputerName: "host-0", IPAddress: "10.0.0.1"}
	if got := inv[l.ids[0]]; got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if got := inv[l.ids[5]]; got.PingStatus != "ConnectionLost" || got.Unreachable() == "" {
		t.Errorf("offline node: %+v", got)
	}
	if n := l.srv.Calls()["AmazonSSM.DescribeInstanceInformation"]; n != 2 {
		t.Errorf("DescribeInstanceInformation called %d times for 70 ids, want 2", n)
	}

	// The lab, like SSM's API reference, refuses a filter that names an
	// instance it does not manage; finding it must not cost much.
	l.srv.ResetCalls()
	unknown := "mi-0123456789abcdef0"
	inv, err = r.Inventory(context.Background(), append(l.ids[:len(l.ids):len(l.ids)], unknown))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != 71 {
		t.Fatalf("inventory has %d targets, want 71", len(inv))
	}
	for _, id := range l.ids {
		if !inv[id].Known {
			t.Errorf("%s is a managed node but was reported unknown", id)
		}
	}
	if got := inv[unknown]; got.Known || got.Unreachable() == "" {
		t.Errorf("unknown node: %+v", got)
	}
	if n, limit := l.srv.Calls()["AmazonSSM.DescribeInstanceInformation"], 2+2*6; n > limit {
		t.Errorf("DescribeInstanceInformation called %d times to find one unknown id among 71, want at most %d", n, limit)
	}

	if _, err := r.Inventory(context.Background(), []string{"i-1"}); err == nil || !strings.Contains(err.Error(), `"i-1"`) {
		t.Errorf("malformed id: err = %v", err)
	}
}

func TestRunRefusedCredentials(t *testing.T) {
	l := startLab(t, 2, 0)
	bad := New(sdkClient(l.clientEndpoint(t), labAccessKey, "wrong-secret", 0), fastOptions)
	_, err := bad.Run(context.Background(), Job{Targets: l.ids, Script: "true"})
	if err == nil {
		t.Fatal("Run with a wrong secret key succeeded")
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "credentials") {
		t.Errorf("error does not point at the credentials: %v", err)
	}
	if n := l.srv.Calls()["AmazonSSM.SendCommand"]; n != 0 {
		t.Errorf("SendCommand called %d times with refused credentials", n)
	}
}
