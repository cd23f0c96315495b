package reconcile

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/ledger/dynamotest"
)

// countingNode is a model host that answers every Passport program with
// success and counts the revokes it ran per user: enough to see who
// revoked what, never to see what a host does.
type countingNode struct {
	info node.Info
	// A revoke waits for gate to close, when there is one, then takes
	// delay, as a real host's would take its time.
	gate    <-chan struct{}
	delay   time.Duration
	mu      sync.Mutex
	revokes map[string]int
}

var dataLine = regexp.MustCompile(`(?m)^PASSPORT_DATA='([A-Za-z0-9+/=]*)'$`)

func newCountingNode(r *rig, n int) *countingNode {
	c := &countingNode{
		info: node.Info{InstanceID: fmt.Sprintf("i-%017x", 0xc0ffee00+n), ComputerName: "counting", IPAddress: "198.51.100.1",
			PlatformType: node.Linux, PlatformName: "Model", AgentVersion: sandbox.AgentVersion},
		revokes: make(map[string]int),
	}
	r.lab.SSM.AddNode(c)
	return c
}

func (c *countingNode) Info() node.Info { return c.info }
func (c *countingNode) Online() bool    { return true }

func (c *countingNode) Run(ctx context.Context, s node.Script) (node.Result, error) {
	fields := map[string]string{}
	if m := dataLine.FindStringSubmatch(s.Source); m != nil {
		data, _ := base64.StdEncoding.DecodeString(m[1])
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				fields[k] = v
			}
		}
	}
	action, user := fields["action"], fields["user"]
	if action == "revoke" {
		c.mu.Lock()
		c.revokes[user]++
		c.mu.Unlock()
		if c.gate != nil {
			select {
			case <-ctx.Done():
				return node.Result{}, ctx.Err()
			case <-c.gate:
			}
		}
		if c.delay > 0 {
			select {
			case <-ctx.Done():
				return node.Result{}, ctx.Err()
			case <-time.After(c.delay):
			}
		}
	}
	return node.Result{Stdout: fmt.Appendf(nil, "passport-result action=%s status=ok user=%s\n", action, user)}, nil
}

func (c *countingNode) count(user string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.revokes[user]
}

// Two reconcilers on one ledger, each with its own connection as two
// processes would have, and a third that took leases and died: every due
// grant is revoked exactly once on every host, the dead one's after its
// leases run out.
func TestTwoReconcilersRevokeEachGrantOnce(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		r := newRig(t, 0)
		twoReconcilers(t, r, r.ledger, r.openLedger(t, r.ledgerPath), r.openLedger(t, r.ledgerPath))
	})
	t.Run("dynalite", func(t *testing.T) {
		r := newRig(t, 0)
		endpoint := dynamotest.Start(t, dynamotest.Dynalite)
		table := "passport-reconcile-test"
		open := func(create bool) *ledger.Ledger {
			c := dynamodb.New(dynamodb.Options{
				Region:       "us-east-1",
				BaseEndpoint: aws.String(endpoint),
				Credentials:  credentials.NewStaticCredentialsProvider("AKIDRECONCILETEST", "reconcile-test-secret", ""),
			})
			l, err := ledger.Open(context.Background(), "dynamodb://"+table, ledger.Options{Now: r.clock.Now, StuckAfter: stuckAfter,
				DynamoDB: ledger.DynamoDBOptions{Client: c, CreateTable: create}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			return l
		}
		seed := open(true)
		twoReconcilers(t, r, seed, open(false), open(false))
	})
}

// twoReconcilers writes due grants through seed, leases some to a
// reconciler that then dies, and runs reconcilers on a and b at once.
func twoReconcilers(t *testing.T, r *rig, seed, la, lb *ledger.Ledger) {
	ctx := context.Background()
	gate := make(chan struct{})
	nodes := []*countingNode{newCountingNode(r, 1), newCountingNode(r, 2)}
	for _, n := range nodes {
		n.gate = gate
	}
	ca := newCA(t)
	caKey := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey())))
	start := r.clock.Now()
	const grants, held = 12, 3
	var users []string
	for i := range grants {
		g := ledger.Grant{
			ID: fmt.Sprintf("ar-%016x", i+1), Requester: "alice@example.com", Reason: "share the work", Username: fmt.Sprintf("pp-share%02d", i),
			Serial: uint64(100 + i), CAPublicKey: caKey, IssuedAt: start, ExpiresAt: start.Add(time.Hour), State: ledger.Active,
		}
		for _, n := range nodes {
			g.Targets = append(g.Targets, ledger.Target{InstanceID: n.info.InstanceID, State: ledger.Active})
		}
		if _, err := seed.Create(ctx, g); err != nil {
			t.Fatal(err)
		}
		users = append(users, g.Username)
	}
	r.clock.Advance(time.Hour + time.Second)

	// The dead reconciler leased the first grants, then was killed before
	// it sent anything.
	for i := range held {
		if _, err := seed.Acquire(ctx, fmt.Sprintf("ar-%016x", i+1), "reconciler/killed", 5*time.Minute); err != nil {
			t.Fatal(err)
		}
	}

	a := r.reconciler(t, la, "reconciler/a", nil)
	b := r.reconciler(t, lb, "reconciler/b", nil)
	var wg sync.WaitGroup
	reports := make([]Report, 2)
	for i, rec := range []*Reconciler{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); reports[i] = pass(t, rec) }()
	}
	// The hosts hold every revoke until both passes are revoking at once,
	// each under leases of its own: the passes overlap, and share the work.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		held := leaseHolders(t, seed)
		if held["reconciler/a"] > 0 && held["reconciler/b"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			close(gate)
			wg.Wait()
			t.Fatalf("the two passes never revoked at the same time (leases %v; reports %+v, %+v)", held, reports[0], reports[1])
		}
	}
	close(gate)
	wg.Wait()
	t.Logf("reconciler a: %+v; b: %+v", reports[0], reports[1])
	if got := reports[0].Revoked + reports[1].Revoked; got != grants-held {
		t.Errorf("the two passes revoked %d grants (%+v, %+v), want %d", got, reports[0], reports[1], grants-held)
	}
	for i, u := range users {
		want := 1
		if i < held {
			want = 0
		}
		for _, n := range nodes {
			if got := n.count(u); got != want {
				t.Errorf("%s revoked %s %d times, want %d", n.info.InstanceID, u, got, want)
			}
		}
	}

	// The dead reconciler's leases run out; the next pass finishes its work.
	r.clock.Advance(5*time.Minute + time.Second)
	if rep := pass(t, b); rep.Revoked != held {
		t.Errorf("pass after the leases ran out: %+v, want %d revoked", rep, held)
	}
	for _, u := range users {
		for _, n := range nodes {
			if got := n.count(u); got != 1 {
				t.Errorf("%s revoked %s %d times in all, want once", n.info.InstanceID, u, got)
			}
		}
	}
	for _, id := range []string{"ar-0000000000000001", fmt.Sprintf("ar-%016x", grants)} {
		if g, err := seed.Get(ctx, id); err != nil || g.State != ledger.Expired {
			t.Errorf("%s is %s (%v), want expired", id, g.State, err)
		}
	}
}

// leaseHolders counts the open grants each holder has leased.
func leaseHolders(t *testing.T, l *ledger.Ledger) map[string]int {
	t.Helper()
	held := map[string]int{}
	for _, state := range []ledger.State{ledger.Active, ledger.Revoking} {
		grants, err := l.List(context.Background(), state)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range grants {
			if g.Lease.Holder != "" {
				held[g.Lease.Holder]++
			}
		}
	}
	return held
}
