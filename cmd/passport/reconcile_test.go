package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// reconcileLab starts a lab with one model node, points this process's
// environment (and so the passport child's) at it, and writes a grant on
// that node whose window ended a minute ago. The node answers every
// program as a successful revoke of the grant's user.
func reconcileLab(t *testing.T) (ledgerURL string, l *ledger.Ledger) {
	ledgerURL, l, _ = reconcileLabNode(t)
	return ledgerURL, l
}

func reconcileLabNode(t *testing.T) (ledgerURL string, l *ledger.Ledger, n *node.Model) {
	t.Helper()
	n = startReconcileLab(t)
	ledgerURL, l = expiredGrantLedger(t, n)
	return ledgerURL, l, n
}

// startReconcileLab starts the lab of reconcileLab and returns its node.
func startReconcileLab(t *testing.T) *node.Model {
	t.Helper()
	dir, err := os.MkdirTemp("", "rcl")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lb, err := lab.Start(ctx, lab.Options{Dir: dir, ModelNodes: 1})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close(); os.RemoveAll(dir) })
	for _, kv := range lb.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")
	node := lb.Models[0]
	node.SetAnswer(0, "passport-result action=revoke status=ok user=pp-cliexpired\n", "")
	return node
}

// expiredGrantLedger makes a sqlite ledger holding a grant on node whose
// window ended a minute ago, written as the provider or the CLI in direct
// mode writes it: by a ledger that announces nothing.
func expiredGrantLedger(t *testing.T, node *node.Model) (ledgerURL string, l *ledger.Ledger) {
	t.Helper()
	ctx := context.Background()
	ledgerURL = "sqlite://" + filepath.Join(t.TempDir(), "ledger.db")
	l, err := ledger.Open(ctx, ledgerURL, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	activeGrant(t, l, node, "ar-00000000000000c1", "alice@example.com", "pp-cliexpired", -time.Minute)
	return ledgerURL, l
}

// activeGrant writes an active grant of user on node to l, issued an hour
// ago and ending endsIn from now.
func activeGrant(t *testing.T, l *ledger.Ledger, node *node.Model, id, requester, user string, endsIn time.Duration) {
	t.Helper()
	now := time.Now()
	if _, err := l.Create(context.Background(), ledger.Grant{
		ID: id, Requester: requester, Reason: "a reconcile test", Username: user,
		Targets:  []ledger.Target{{InstanceID: node.Info().InstanceID, State: ledger.Active}},
		IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(endsIn), State: ledger.Active,
	}); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileOnce(t *testing.T) {
	ledgerURL, l := reconcileLab(t)
	stdout, stderr, err := passportRun(t, "reconcile", "--once", "--sweep=false", "--ledger", ledgerURL, "--name", "reconciler/cron")
	if err != nil {
		t.Fatalf("reconcile --once: %v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "due 1, revoked 1,") {
		t.Errorf("reconcile --once printed %q, want one grant revoked", stdout)
	}
	// The log is JSON lines, one object each.
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Errorf("log line is not JSON: %q", line)
		}
	}
	g, err := l.Get(context.Background(), "ar-00000000000000c1")
	if err != nil || g.State != ledger.Expired {
		t.Fatalf("grant after the pass: %s, %v; want expired", g.State, err)
	}
	events, _ := l.Events(context.Background(), ledger.Filter{Person: "reconciler/cron"})
	if len(events) == 0 {
		t.Error("the audit trail does not name the reconciler")
	}

	// The lab's environment names its own ledger; without it there is none.
	t.Setenv("PASSPORT_LEDGER", "")
	if _, stderr, err := passportRun(t, "reconcile", "--once"); err == nil || !strings.Contains(stderr, "--ledger") {
		t.Errorf("reconcile without a ledger: %v %q, want an error naming --ledger", err, stderr)
	}
}

// reconcileDaemon starts passport reconcile with args, a daemon given
// --listen, and returns the address of its /metrics, and stop, which
// signals it as a service manager does and says how it exited.
func reconcileDaemon(t *testing.T, args ...string) (addr string, stop func() error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"reconcile"}, args...)...)
	cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	addr = logAddr(t, bufio.NewScanner(stderr))
	drained := make(chan struct{})
	go func() { io.Copy(io.Discard, stderr); close(drained) }() // keep the child's log from blocking it
	return addr, func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		<-drained
		return cmd.Wait()
	}
}

func TestReconcileDaemonServesMetricsAndHealth(t *testing.T) {
	ledgerURL, l := reconcileLab(t)
	addr, stop := reconcileDaemon(t, "--interval", "200ms", "--sweep=false", "--listen", "127.0.0.1:0", "--ledger", ledgerURL)

	deadline := time.Now().Add(time.Minute)
	for {
		g, err := l.Get(context.Background(), "ar-00000000000000c1")
		if err == nil && g.State == ledger.Expired {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not expire the grant: %s, %v", g.State, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	health := get(t, "http://"+addr+"/healthz")
	if !strings.Contains(health, `"healthy":true`) {
		t.Errorf("/healthz: %s", health)
	}
	// The grant is expired in the ledger before the pass that expired it
	// has counted the grants by state: wait for that pass to end.
	want := []string{
		`passport_reconcile_revocations_total{reason="expired"} 1`,
		`passport_grants{state="active"} 0`,
		"passport_reconcile_pass_duration_seconds_count",
		"passport_oldest_overdue_grant_seconds 0",
	}
	var missing []string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		metrics := get(t, "http://"+addr+"/metrics")
		missing = missing[:0]
		for _, w := range want {
			if !strings.Contains(metrics, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, w := range missing {
		t.Errorf("/metrics lacks %q", w)
	}

	if err := stop(); err != nil {
		t.Errorf("the daemon did not exit cleanly on SIGTERM: %v", err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}

// logAddr reads the JSON log until the line that names the metrics address.
func logAddr(t *testing.T, log *bufio.Scanner) string {
	t.Helper()
	for log.Scan() {
		var v struct {
			Addr string `json:"addr"`
		}
		if json.Unmarshal(log.Bytes(), &v) == nil && v.Addr != "" {
			return v.Addr
		}
	}
	t.Fatal("the reconciler never logged its metrics address")
	return ""
}

// A reconciler killed with SIGKILL while it revokes leaves its lease
// behind; the next one leaves the grant alone while the lease runs, and
// finishes it once the lease has run out.
func TestReconcilerKilledMidPassLeavesWorkToTheNext(t *testing.T) {
	ledgerURL, l, n := reconcileLabNode(t)
	// The host answers the first revoke only after the test is over: the
	// first reconciler is surely still revoking when it is killed.
	n.SetDelay(time.Hour)
	ctx := context.Background()
	killed, _, _ := passport(t, "reconcile", "--once", "--sweep=false", "--lease", "10m", "--ledger", ledgerURL, "--name", "reconciler/killed")
	deadline := time.Now().Add(time.Minute)
	for {
		g, err := l.Get(ctx, "ar-00000000000000c1")
		if err == nil && g.Lease.Holder == "reconciler/killed" && g.State == ledger.Revoking {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first reconciler never started revoking: %+v, %v", g, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	killed.Process.Kill()
	killed.Wait()

	stdout, stderr, err := passportRun(t, "reconcile", "--once", "--sweep=false", "--ledger", ledgerURL, "--name", "reconciler/next")
	if err != nil || !strings.Contains(stdout, "skipped 1") {
		t.Fatalf("a pass while the dead reconciler's lease runs: %q, %v\n%s", stdout, err, stderr)
	}

	// Ten minutes pass, as far as the lease is concerned: the dead
	// reconciler's lease is written again from a clock an hour behind, so
	// it ran out long ago. The host answers at once from now on.
	behind, err := ledger.Open(ctx, ledgerURL, ledger.Options{Now: func() time.Time { return time.Now().Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	defer behind.Close()
	if _, err := behind.Acquire(ctx, "ar-00000000000000c1", "reconciler/killed", 10*time.Minute); err != nil {
		t.Fatal(err)
	}
	n.SetDelay(0)
	stdout, stderr, err = passportRun(t, "reconcile", "--once", "--sweep=false", "--ledger", ledgerURL, "--name", "reconciler/next")
	if err != nil || !strings.Contains(stdout, "revoked 1") {
		t.Fatalf("a pass after the lease ran out: %q, %v\n%s", stdout, err, stderr)
	}
	g, _ := l.Get(ctx, "ar-00000000000000c1")
	if g.State != ledger.Expired {
		t.Errorf("grant is %s, want expired", g.State)
	}
	events, _ := l.Events(ctx, ledger.Filter{GrantID: g.ID, Person: "reconciler/next"})
	if len(events) == 0 || events[len(events)-1].Action != ledger.ActionExpired {
		t.Errorf("the next reconciler's events: %+v, want it to close the grant", events)
	}
	if err := l.Verify(ctx); err != nil {
		t.Errorf("the trail after a kill: %v", err)
	}
}

// TestReconcileRechecksPolicy: --policy names the administrators' policy;
// a live grant it no longer permits is revoked, saying why; --policy none
// leaves live grants to their windows.
func TestReconcileRechecksPolicy(t *testing.T) {
	ledgerURL, l, node := reconcileLabNode(t)
	ctx := context.Background()
	now := time.Now()
	if _, err := l.Create(ctx, ledger.Grant{
		ID: "ar-00000000000000c2", Requester: "carol@example.com", Groups: []string{"ops"}, Reason: "CHG-7 live", Username: "pp-clidenied",
		Targets:  []ledger.Target{{InstanceID: node.Info().InstanceID, State: ledger.Active}},
		IssuedAt: now.Add(-time.Minute), ExpiresAt: now.Add(time.Hour), State: ledger.Active,
	}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.cedar")
	writePolicy := func(doc string) {
		if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	reconcile := func(policy string) string {
		t.Helper()
		stdout, stderr, err := passportRun(t, "reconcile", "--once", "--sweep=false", "--ledger", ledgerURL, "--policy", policy)
		if err != nil {
			t.Fatalf("reconcile --policy %s: %v\n%s", policy, err, stderr)
		}
		return stdout
	}
	state := func() ledger.State {
		g, err := l.Get(ctx, "ar-00000000000000c2")
		if err != nil {
			t.Fatal(err)
		}
		return g.State
	}

	writePolicy(`permit (principal in Passport::Group::"ops", action == Passport::Action::"access", resource);`)
	if out := reconcile("file://" + file); !strings.Contains(out, "denied 0") || state() != ledger.Active {
		t.Fatalf("a pass while policy permits ops: %q, grant %s", out, state())
	}
	writePolicy(`permit (principal in Passport::Group::"admins", action == Passport::Action::"access", resource);`)
	if out := reconcile("none"); !strings.Contains(out, "denied 0") || state() != ledger.Active {
		t.Fatalf("--policy none: %q, grant %s; want it left alone", out, state())
	}
	node.SetAnswer(0, "passport-result action=revoke status=ok user=pp-clidenied\n", "")
	if out := reconcile("file://" + file); !strings.Contains(out, "denied 1, ") || state() != ledger.Revoked {
		t.Fatalf("a pass after policy dropped ops: %q, grant %s; want it denied and revoked", out, state())
	}
	events, _ := l.Events(ctx, ledger.Filter{GrantID: "ar-00000000000000c2"})
	if len(events) == 0 || events[0].Action != ledger.ActionDenied || !strings.Contains(events[0].Detail, "no longer permits") {
		t.Errorf("audit trail: %+v; want a denied event saying why", events)
	}

	if err := os.Chmod(file, 0o666); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := passportRun(t, "reconcile", "--once", "--sweep=false", "--ledger", ledgerURL, "--policy", "file://"+file); err == nil || !strings.Contains(stderr, "writable by group or others") {
		t.Errorf("a policy anyone may rewrite: %v %q, want a refusal", err, stderr)
	}
}
