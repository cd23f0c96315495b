package service

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/documents"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/reconcile"
)

// benchRig is a service on model nodes that answer every provision, with
// no rate limit: the benchmarks measure speed, not the limiter.
func benchRig(b *testing.B, models int) *rig {
	b.Helper()
	r := startRigWith(b, lab.Options{ModelNodes: models}, func(s *Settings) { s.RatePerMinute = 1 << 24 })
	for _, m := range r.lab.Models {
		m.SetAnswer(0, "passport-result action=provision status=ok\n", "")
	}
	return r
}

// directCore is the access core as New builds it for the service, on the
// same lab and ledger: the same documents, fleet options, policy and CA.
// A grant through it is the service's grant without the service.
func (r *rig) directCore(b *testing.B) *access.Service {
	b.Helper()
	ctx := context.Background()
	clients := r.svc.Clients
	docs, err := documents.Lookup(ctx, clients.SSM)
	if err != nil {
		b.Fatal(err)
	}
	tags := policy.EC2Tags{Client: clients.EC2}
	check := &reconcile.PolicyCheck{Load: func(ctx context.Context) (*policy.Policy, error) {
		return policy.Load(ctx, r.settings.PolicySource, clients.SSM)
	}, Tags: tags}
	core, err := access.New(access.Config{Documents: docs, Fleet: fleet.New(clients.SSM, r.settings.Fleet), UsernamePrefix: r.settings.UsernamePrefix,
		Ledger: r.svc.Ledger, Authorizer: gate{check, tags}, SealedOnly: true})
	if err != nil {
		b.Fatal(err)
	}
	return core
}

// modelIDs are the first n model nodes' instance ids.
func modelIDs(r *rig, n int) []string {
	var ids []string
	for _, m := range r.lab.Models[:n] {
		ids = append(ids, m.Info().InstanceID)
	}
	return ids
}

// BenchmarkGrantThroughTheService grants one request on 10 model nodes
// through the service (the client's HTTP call, the token check, the
// request's checks, JSON both ways) and the same request directly through
// the access core the service wraps, on the same lab, alternating.
// service/direct is what the service adds; the target is at most 1.1.
func BenchmarkGrantThroughTheService(b *testing.B) {
	r := benchRig(b, 10)
	ctx := context.Background()
	carol := r.signIn(b, "carol")
	core := r.directCore(b)
	key := newUserKey(b).line
	targets := modelIDs(r, 10)
	in := api.CreateRequest{Targets: targets, Reason: "CHG-1 benchmark", PublicKey: key}
	direct := access.Request{Targets: targets, Reason: in.Reason, PublicKey: key, CA: r.ca, Requester: "carol", RequesterKind: policy.Person, Groups: []string{"admins"}}
	viaService := func() time.Duration {
		start := time.Now()
		if _, err := carol.Create(ctx, in, ""); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	viaCore := func() time.Duration {
		start := time.Now()
		if _, err := core.Grant(ctx, direct); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var svc, dir time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Alternate which goes first, so neither always meets a lab warmed
		// (or tired) by the other.
		if i%2 == 0 {
			svc += viaService()
			dir += viaCore()
		} else {
			dir += viaCore()
			svc += viaService()
		}
	}
	b.ReportMetric(float64(svc.Nanoseconds())/float64(b.N), "ns/service-grant")
	b.ReportMetric(float64(dir.Nanoseconds())/float64(b.N), "ns/direct-grant")
	b.ReportMetric(float64((svc-dir).Microseconds())/1000/float64(b.N), "ms-added/grant")
	b.ReportMetric(float64(svc)/float64(dir), "service/direct")
}

// BenchmarkApproveAndProvision asks for 10 model nodes as bob, whom the
// benchmark's policy makes wait for one administrator, and has erin
// approve it: her call provisions the hosts. Alternating with it, carol
// (admins) is granted the same 10 nodes at once, the baseline. approve/
// direct is the approving call against the direct grant (the target: no
// more than 1, within the noise); the pending create is the approval's
// own round trip, reported beside it, and flow/direct is both calls
// against the direct grant.
func BenchmarkApproveAndProvision(b *testing.B) {
	const models = 10
	r := startRigWith(b, lab.Options{ModelNodes: models, Policy: lab.Policy() + benchApprovalPolicy}, func(s *Settings) { s.RatePerMinute = 1 << 24 })
	for _, m := range r.lab.Models {
		m.SetAnswer(0, "passport-result action=provision status=ok\n", "")
	}
	ctx := context.Background()
	bob, carol, erin := r.signIn(b, "bob"), r.signIn(b, "carol"), r.signIn(b, "erin")
	key := newUserKey(b).line
	in := api.CreateRequest{Targets: modelIDs(r, models), Reason: "CHG-1 benchmark", PublicKey: key}
	var direct, asked, approved time.Duration
	grantDirect := func() {
		start := time.Now()
		if g, err := carol.Create(ctx, in, ""); err != nil || g.State != "active" {
			b.Fatalf("carol's grant: %s, %v", g.State, err)
		}
		direct += time.Since(start)
	}
	grantApproved := func() {
		start := time.Now()
		p, err := bob.Create(ctx, in, "")
		if err != nil || p.State != "pending" {
			b.Fatalf("bob's request: %s, %v; want pending", p.State, err)
		}
		mid := time.Now()
		g, err := erin.Approve(ctx, p.ID, "")
		if err != nil || g.State != "active" || len(g.Targets) != models {
			b.Fatalf("erin's approval: %s, %v; want active on %d targets", g.State, err, models)
		}
		asked += mid.Sub(start)
		approved += time.Since(mid)
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			grantDirect()
			grantApproved()
		} else {
			grantApproved()
			grantDirect()
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(direct.Microseconds())/1000/n, "ms/direct-grant")
	b.ReportMetric(float64(approved.Microseconds())/1000/n, "ms/approve")
	b.ReportMetric(float64(asked.Microseconds())/1000/n, "ms/pending-create")
	b.ReportMetric(float64(approved)/float64(direct), "approve/direct")
	b.ReportMetric(float64(asked+approved)/float64(direct), "flow/direct")
}

// benchApprovalPolicy holds developers' requests for the model nodes
// (Env=scale) for one approval; the lab's policy lets administrators
// approve anywhere and reach everything at once.
const benchApprovalPolicy = `
@id("bench-dev-scale")
@approvals("1")
permit (principal in Passport::Group::"dev", action == Passport::Action::"access", resource)
when { resource.hasTag("Env") && resource.getTag("Env") == "scale" && context.duration <= 3600 && !context.sudo };
`

// BenchmarkConcurrentReads makes 200 calls at once against the service,
// half reads of one request and half lists, and the same 200 at once
// against the ledger alone (the reads the handlers make). It reports each
// call's p50 and p99 latency, and the service's against the ledger's.
func BenchmarkConcurrentReads(b *testing.B) {
	const calls, requests = 200, 20
	r := benchRig(b, 4)
	ctx := context.Background()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = calls
	carol, err := client.New(r.url, client.Options{HTTP: &http.Client{Transport: tr}, Token: r.token(b, "carol")})
	if err != nil {
		b.Fatal(err)
	}
	var ids []string
	for range requests {
		req, err := carol.Create(ctx, api.CreateRequest{Targets: modelIDs(r, 4), Reason: "CHG-2 benchmark", PublicKey: newUserKey(b).line}, "")
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, req.ID)
	}
	book := r.svc.Ledger
	service := func(i int) error {
		if i%2 == 0 {
			_, err := carol.Get(ctx, ids[i%requests])
			return err
		}
		_, err := carol.List(ctx, client.ListOptions{})
		return err
	}
	// What the handlers read: a request, or the three open states.
	direct := func(i int) error {
		if i%2 == 0 {
			_, err := book.Get(ctx, ids[i%requests])
			return err
		}
		for _, st := range []ledger.State{ledger.Provisioning, ledger.Active, ledger.Revoking} {
			if _, err := book.List(ctx, st); err != nil {
				return err
			}
		}
		return nil
	}
	burst := func(call func(int) error, into *[]time.Duration) {
		var wg sync.WaitGroup
		var mu sync.Mutex
		start := make(chan struct{})
		for i := range calls {
			wg.Go(func() {
				<-start
				t0 := time.Now()
				err := call(i)
				took := time.Since(t0)
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				*into = append(*into, took)
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
	}
	var svc, dir []time.Duration
	b.ResetTimer()
	for range b.N {
		burst(service, &svc)
		burst(direct, &dir)
	}
	b.StopTimer()
	sp50, sp99 := percentile(svc, 50), percentile(svc, 99)
	dp50, dp99 := percentile(dir, 50), percentile(dir, 99)
	b.ReportMetric(float64(sp50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(sp99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(dp50.Microseconds())/1000, "ledger-p50-ms")
	b.ReportMetric(float64(dp99.Microseconds())/1000, "ledger-p99-ms")
	b.ReportMetric(float64(sp50)/float64(dp50), "p50/ledger")
	b.ReportMetric(float64(sp99)/float64(dp99), "p99/ledger")
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// BenchmarkTimeToAccess is the time a person feels on one sandbox host:
// from asking for access through the service (passport request create) to
// the first shell prompt over SSH through a Session Manager session the
// service opens (passport ssh). The baseline is the connection alone, to
// a prompt, once access is there; access/connect is what asking adds.
func BenchmarkTimeToAccess(b *testing.B) {
	r := startRig(b, 1, 0)
	ctx := context.Background()
	h := r.lab.Hosts[0]
	target := h.Info().InstanceID
	alice := r.signIn(b, "alice")
	key := newUserKey(b)
	hostKey := labtest.HostKey(b, h)
	prompt := func(req api.Request) {
		sess, err := alice.StartSession(ctx, req.ID, api.SessionRequest{Target: target, Kind: "ssh"})
		if err != nil {
			b.Fatal(err)
		}
		if err := shellPrompt(ctx, sess, h.SSHAddr(), req.Username, labtest.CertSigner(b, key.signer, req.Certificate), hostKey); err != nil {
			b.Fatal(err)
		}
	}
	var access, connect time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		req, err := alice.Create(ctx, api.CreateRequest{Targets: []string{target}, Reason: "INC-5 time to access", PublicKey: key.line}, "")
		if err != nil {
			b.Fatal(err)
		}
		prompt(req)
		access += time.Since(start)

		start = time.Now()
		prompt(req)
		connect += time.Since(start)

		b.StopTimer()
		if _, err := alice.End(ctx, req.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(access.Milliseconds())/float64(b.N), "ms/access")
	b.ReportMetric(float64(connect.Milliseconds())/float64(b.N), "ms/connect")
	b.ReportMetric(float64(access)/float64(connect), "access/connect")
}

// shellPrompt logs in over an AWS-StartSSHSession session, as passport
// ssh's ProxyCommand does, asks for a terminal and a shell, and returns
// once the shell prompts.
func shellPrompt(ctx context.Context, sess api.Session, addr, user string, signer ssh.Signer, hostKey ssh.PublicKey) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, end, err := sshThroughSession(ctx, sess, addr, user, signer, hostKey)
	if err != nil {
		return err
	}
	defer end()
	shell, err := conn.NewSession()
	if err != nil {
		return err
	}
	defer shell.Close()
	out := &promptWriter{seen: make(chan struct{})}
	shell.Stdout, shell.Stderr = out, out
	if err := shell.RequestPty("xterm", 24, 80, ssh.TerminalModes{}); err != nil {
		return err
	}
	if err := shell.Shell(); err != nil {
		return err
	}
	select {
	case <-out.seen:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no prompt within a minute; the shell wrote %q", out.String())
	}
}

// promptWriter closes seen once a shell prompt ("$ ") arrives.
type promptWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	seen chan struct{}
	once sync.Once
}

func (w *promptWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte("$ ")) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *promptWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// BenchmarkTimeToAccess1000 asks for access to 1,000 model nodes through
// the service (five requests of 200, the most one request takes, at once)
// and waits until every target is provisioned. Two baselines run in the
// same iterations: the same five grants straight through the access core
// the service wraps (service/direct), and the fan-out floor, a bare Run
// Command of a trivial script to the same nodes (access/floor).
func BenchmarkTimeToAccess1000(b *testing.B) {
	const hosts, perRequest = 1000, access.MaxTargets
	r := benchRig(b, hosts)
	ctx := context.Background()
	carol := r.signIn(b, "carol")
	core := r.directCore(b)
	key := newUserKey(b).line
	ids := modelIDs(r, hosts)
	// The floor runs as the lab's operator: the service's own identity
	// may send only Passport's documents.
	floor := fleet.New(ssm.NewFromConfig(r.lab.AWSConfig()), r.settings.Fleet)
	// all grants every node in requests of perRequest at once.
	all := func(grant func(targets []string) ([]string, error)) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for i := 0; i < hosts; i += perRequest {
			wg.Go(func() {
				statuses, err := grant(ids[i : i+perRequest])
				if err != nil {
					b.Error(err)
				}
				for _, st := range statuses {
					if st != "active" {
						b.Errorf("a target is %s", st)
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	viaService := func(targets []string) ([]string, error) {
		req, err := carol.Create(ctx, api.CreateRequest{Targets: targets, Reason: "CHG-3 a thousand hosts", PublicKey: key}, "")
		var st []string
		for _, t := range req.Targets {
			st = append(st, t.Status)
		}
		return st, err
	}
	viaCore := func(targets []string) ([]string, error) {
		g, err := core.Grant(ctx, access.Request{Targets: targets, Reason: "CHG-3 a thousand hosts", PublicKey: key, CA: r.ca,
			Requester: "carol", RequesterKind: policy.Person, Groups: []string{"admins"}})
		var st []string
		if g != nil {
			for _, t := range g.Targets {
				st = append(st, string(t.Status))
			}
		}
		return st, err
	}
	var svc, dir, bare time.Duration
	b.ResetTimer()
	for i := range b.N {
		// Alternate which goes first: each leaves the ledger 1,000 audit
		// events longer for the other.
		if i%2 == 0 {
			svc += all(viaService)
			dir += all(viaCore)
		} else {
			dir += all(viaCore)
			svc += all(viaService)
		}
		start := time.Now()
		results, err := floor.Run(ctx, fleet.Job{Targets: ids, Script: "true"})
		bare += time.Since(start)
		if err != nil || len(results) != hosts {
			b.Fatalf("the floor run: %d results, %v", len(results), err)
		}
	}
	b.ReportMetric(float64(svc.Milliseconds())/float64(b.N), "ms/1000-hosts")
	b.ReportMetric(float64(dir.Milliseconds())/float64(b.N), "ms/direct")
	b.ReportMetric(float64(bare.Milliseconds())/float64(b.N), "ms/floor")
	b.ReportMetric(float64(svc)/float64(dir), "service/direct")
	b.ReportMetric(float64(svc)/float64(bare), "access/floor")
}
