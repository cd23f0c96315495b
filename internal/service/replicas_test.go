package service

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ledger/dynamotest"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// replica is one `passport serve` process.
type replica struct {
	url string
	cmd *exec.Cmd
	log string
}

// startReplica runs `passport serve` as the lab's service identity on one
// shared DynamoDB ledger, and waits until it answers.
func startReplica(t *testing.T, bin string, l *lab.Lab, dynamo, caKey, name string) *replica {
	t.Helper()
	return startServe(t, bin, l, "", caKey, name, "--ledger", "dynamodb://passport-ledger", "--create-table", "--endpoint-dynamodb", dynamo)
}

// startServe runs `passport serve` as the lab's service identity on addr
// (a free loopback port when empty) with the ledger and other flags in
// args, and waits until it answers.
func startServe(t *testing.T, bin string, l *lab.Lab, addr, caKey, name string, args ...string) *replica {
	t.Helper()
	if addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr = ln.Addr().String()
		ln.Close()
	}
	r := &replica{url: "http://" + addr, log: filepath.Join(t.TempDir(), "serve.log")}
	out, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	e := l.Endpoint
	r.cmd = exec.Command(bin, append([]string{"serve", "--url", r.url, "--listen", addr,
		"--ca", "lab=kms:" + caKey, "--policy", "ssm://" + lab.PolicyParameter,
		"--saml-metadata", l.IdP.MetadataURL(), "--saml-entity-id", "passport",
		"--reconcile-interval", "1s", "--stuck-after", "8s", "--sweep=false", "--name", name,
		"--region", l.Region, "--endpoint-ssm", e, "--endpoint-kms", e, "--endpoint-sts", e, "--endpoint-ec2", e}, args...)...)
	r.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+l.Service.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+l.Service.SecretAccessKey,
		"AWS_SESSION_TOKEN=", "AWS_PROFILE=", "AWS_ENDPOINT_URL=", "AWS_ENDPOINT_URL_S3="+e)
	r.cmd.Stdout, r.cmd.Stderr = out, out
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
		r.cmd.Wait()
	})
	waitFor(t, 60*time.Second, name+" to answer", func() bool {
		resp, err := http.Get(r.url + api.PathHealth)
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return r
}

// waitFor polls cond until it holds; the deadline only turns a hang into
// a failure.
func waitFor(t *testing.T, deadline time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(deadline); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("waited %s for %s", deadline, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// builtPassport is the passport command, built once for every test of
// the package that runs it; TestMain removes its directory.
var builtPassport struct {
	once     sync.Once
	dir, bin string
	err      error
}

// buildPassport builds the passport command as it ships, once per run.
func buildPassport(t *testing.T) string {
	t.Helper()
	b := &builtPassport
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "passport-bin-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "passport")
		out, err := exec.Command("go", "build", "-o", b.bin, "github.com/passport-access/terraform-provider-passport/cmd/passport").CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("%v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatalf("building passport: %v", b.err)
	}
	return b.bin
}

// TestReplicasShareOneLedger runs two `passport serve` processes on one
// DynamoDB-compatible server (dynalite, whose conditional writes are
// atomic as DynamoDB's are; moto's are not, see internal/ledger). A call
// to either sees the same state, one is killed with SIGKILL half-way
// through a grant, and the other undoes what it left: nothing is granted
// twice, no user is left on a host, and the audit chain verifies.
func TestReplicasShareOneLedger(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds passport and runs two service processes")
	}
	l := labtest.Start(t, lab.Options{Hosts: 2})
	dynamo := dynamotest.Start(t, dynamotest.Dynalite)
	ctx := context.Background()
	ca, err := sshca.CreateKMS(ctx, kms.NewFromConfig(l.AWSConfig()), sshca.Ed25519,
		sshca.KMSKeyOptions{Description: "replicas test CA", Tags: map[string]string{"passport:certificate-authority": "lab"}})
	if err != nil {
		t.Fatal(err)
	}
	bin := buildPassport(t)
	a := startReplica(t, bin, l, dynamo, ca.KMSKeyID(), "service/a")
	b := startReplica(t, bin, l, dynamo, ca.KMSKeyID(), "service/b")
	rig := &rig{lab: l, url: a.url}
	// carol (admins) may reach both hosts: one is staging, one production.
	carol := rig.token(t, "carol")
	atA := rig.anonymous(t).WithToken(carol)
	atB, err := client.New(b.url, client.Options{Token: carol})
	if err != nil {
		t.Fatal(err)
	}

	// A token made at one replica works at the other, and a sign-out at
	// either ends it at both.
	other := rig.token(t, "alice")
	if _, err := atB.WithToken(other).WhoAmI(ctx); err != nil {
		t.Fatalf("a token from replica a at replica b: %v", err)
	}
	if err := atB.WithToken(other).Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := rig.anonymous(t).WithToken(other).WhoAmI(ctx); codeOf(err) != api.CodeUnauthenticated {
		t.Fatalf("signed out at b, still signed in at a: %v", err)
	}

	fast, held := l.Hosts[0], l.Hosts[1]
	// Another Passport program holds the host lock on one host: replica
	// a's provision waits there while the other host's finishes.
	labtest.OnHost(t, held, "setsid flock /run/passport.lock sleep 601 >/dev/null 2>&1 < /dev/null &")
	in := api.CreateRequest{Targets: []string{fast.Info().InstanceID, held.Info().InstanceID}, Reason: "INC-88 replica killed mid-grant", PublicKey: newUserKey(t).line}
	created := make(chan error, 1)
	go func() {
		_, err := atA.Create(ctx, in, "apply-88")
		created <- err
	}()
	waitFor(t, time.Minute, "replica a to provision the free host", func() bool {
		return labtest.OnHost(t, fast, "ls /var/lib/passport/grants 2>/dev/null | wc -l") == "1"
	})
	if err := syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.cmd.Wait()
	if err := <-created; err == nil {
		t.Fatal("the create answered although its replica was killed")
	}
	// The command replica a sent goes on without it once the lock is free.
	labtest.OnHost(t, held, "pkill -f 'sleep 601' || true")

	// The caller tries again at the other replica: the same request, not a
	// second grant.
	var id string
	waitFor(t, time.Minute, "replica b to undo what replica a left", func() bool {
		req, err := atB.Create(ctx, in, "apply-88")
		if err != nil {
			t.Logf("retry at b: %v", err)
			return false
		}
		id = req.ID
		return req.State == "revoked" || req.State == "failed" || req.State == "expired"
	})
	all, err := atB.List(ctx, client.ListOptions{State: "revoked"})
	if err != nil {
		t.Fatal(err)
	}
	failed, _ := atB.List(ctx, client.ListOptions{State: "failed"})
	open, _ := atB.List(ctx, client.ListOptions{})
	if n := len(all) + len(failed) + len(open); n != 1 || len(open) != 0 {
		t.Errorf("carol holds %d requests (%d open); want the one, closed", n, len(open))
	}
	for _, h := range l.Hosts {
		if users := labtest.OnHost(t, h, "getent group passport | cut -d: -f4; ls /var/lib/passport/grants 2>/dev/null"); users != "" {
			t.Errorf("%s still has Passport users or grant records after replica b's undo: %q", h.Info().InstanceID, users)
		}
	}
	events, err := atB.Audit(ctx, client.AuditFilter{Request: id})
	if err != nil {
		t.Fatal(err)
	}
	var trail []string
	for _, e := range events {
		trail = append(trail, e.Actor+" "+e.Action)
	}
	if !strings.Contains(strings.Join(trail, ","), "service/b revoked") {
		t.Errorf("request %s's trail %q; want replica b's revokes", id, trail)
	}
	verify := exec.Command(bin, "audit", "verify", "--ledger", "dynamodb://passport-ledger", "--endpoint-dynamodb", dynamo, "--region", l.Region)
	verify.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x")
	if out, err := verify.CombinedOutput(); err != nil {
		t.Errorf("passport audit verify: %v\n%s", err, out)
	}
	if t.Failed() {
		for _, r := range []*replica{a, b} {
			log, _ := os.ReadFile(r.log)
			t.Logf("%s log:\n%s", r.url, log)
		}
	}
}
