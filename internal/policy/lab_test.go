package policy_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ec2sdk "github.com/aws/aws-sdk-go-v2/service/ec2"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/ec2"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

const (
	stagingID    = "i-0a000000000000001"
	productionID = "i-0b000000000000002"
)

// policyLab is a lab with a staging and a production node, the example
// policy published in its Parameter Store, and real SSM and EC2 clients.
type policyLab struct {
	*lab.Lab
	ssm *ssmsdk.Client
	ec2 *ec2sdk.Client
}

// startPolicyLab starts the lab, with sandbox hosts when asked (skipping
// where they cannot boot).
func startPolicyLab(t *testing.T, hosts int) *policyLab {
	t.Helper()
	if hosts > 0 {
		if err := sandbox.Available(); err != nil {
			t.Skip(err)
		}
		if testing.Short() {
			t.Skip("-short: sandbox hosts take seconds to boot")
		}
	}
	// Short: host agent sockets live under it (107-byte limit).
	dir, err := os.MkdirTemp("", "pol")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, n := range []node.Info{
		{InstanceID: stagingID, ComputerName: "web-1", IPAddress: "198.51.100.1", PlatformType: node.Linux, Tags: map[string]string{"Name": "web-1", "Env": "staging"}},
		{InstanceID: productionID, ComputerName: "web-2", IPAddress: "198.51.100.2", PlatformType: node.Linux, Tags: map[string]string{"Name": "web-2", "Env": "production"}},
	} {
		l.SSM.AddNode(node.NewModel(n))
	}
	creds := credentials.NewStaticCredentialsProvider(l.AccessKeyID, l.SecretAccessKey, "")
	// EC2 answers on its own endpoint here; the lab proper routes it
	// beside STS (ec2.Route).
	ec2srv := awsjson.NewServer(awsjson.Config{Region: l.Region, Credentials: map[string]string{l.AccessKeyID: l.SecretAccessKey}})
	ec2srv.Handle("POST /{$}", ec2.New(ec2srv, func() map[string]map[string]string {
		tags := map[string]map[string]string{}
		for _, n := range l.SSM.Nodes() {
			tags[n.Info().InstanceID] = n.Info().Tags
		}
		return tags
	}))
	ts := httptest.NewServer(ec2srv)
	t.Cleanup(ts.Close)
	pl := &policyLab{
		Lab: l,
		ssm: ssmsdk.New(ssmsdk.Options{Region: l.Region, BaseEndpoint: aws.String(l.Endpoint), Credentials: creds}),
		ec2: ec2sdk.New(ec2sdk.Options{Region: l.Region, BaseEndpoint: aws.String(ts.URL), Credentials: creds}),
	}
	doc, err := os.ReadFile("testdata/example.cedar")
	if err != nil {
		t.Fatal(err)
	}
	// Every lab starts with its own policy there; the tests use the guide's.
	_, err = pl.ssm.PutParameter(ctx, &ssmsdk.PutParameterInput{Name: aws.String("/passport/policy"), Value: aws.String(string(doc)), Type: ssmtypes.ParameterTypeString, Overwrite: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// service is the access core on the lab, asking a Gate over the policy
// in Parameter Store, for a person in groups.
func (l *policyLab) service(t *testing.T, groups ...string) *access.Service {
	t.Helper()
	p, err := policy.Load(context.Background(), policy.DefaultSource, l.ssm)
	if err != nil {
		t.Fatal(err)
	}
	if p.Len() == 0 {
		t.Fatalf("no policy loaded from %s", p.Source())
	}
	svc, err := access.New(access.Config{
		Fleet:      fleet.New(l.ssm, fleet.Options{FirstPoll: 20 * time.Millisecond, MaxPoll: 100 * time.Millisecond}),
		Authorizer: &policy.Gate{Policy: p, Tags: policy.EC2Tags{Client: l.ec2}, Groups: groups},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func publicKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func newCA(t *testing.T) *sshca.CA {
	t.Helper()
	ca, err := sshca.Generate(sshca.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// noRunCommand fails when anything reached a host since the last reset.
func noRunCommand(t *testing.T, l *policyLab) {
	t.Helper()
	for call, n := range l.Server.Calls() {
		if strings.HasSuffix(call, "SendCommand") && n > 0 {
			t.Errorf("a denied request sent %d Run Command(s): %v", n, l.Server.Calls())
		}
	}
}

func TestDeniedGrantTouchesNoHost(t *testing.T) {
	l := startPolicyLab(t, 0)
	ops := l.service(t, "ops")
	ca := newCA(t)
	tests := []struct {
		name   string
		req    access.Request
		denied []string // targets the error names
		why    string
	}{
		{"ops ask for staging and production", access.Request{Targets: []string{stagingID, productionID}, Reason: "INC-7 restart the web tier"}, []string{productionID}, `"production-only-oncall"`},
		{"no ticket in the reason", access.Request{Targets: []string{stagingID}, Reason: "restart the web tier"}, []string{stagingID}, `"reason-names-ticket"`},
		{"longer than the ops cap", access.Request{Targets: []string{stagingID}, Reason: "INC-7 restart the web tier", Duration: 5 * time.Hour}, []string{stagingID}, "no policy in ssm:///passport/policy permits"},
		{"sudo for ops", access.Request{Targets: []string{stagingID}, Reason: "INC-7 restart the web tier", Sudo: true}, []string{stagingID}, `"sudo-only-sre"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.CA, tt.req.PublicKey, tt.req.Requester = ca, publicKey(t), "alice@example.com"
			l.Server.ResetCalls()
			g, err := ops.Grant(context.Background(), tt.req)
			var denied *policy.DeniedError
			if !errors.As(err, &denied) || g != nil {
				t.Fatalf("Grant = %v, %v; want a policy denial", g, err)
			}
			for _, id := range tt.denied {
				if !strings.Contains(err.Error(), id) {
					t.Errorf("the denial does not name %s:\n%v", id, err)
				}
			}
			if !strings.Contains(err.Error(), tt.why) {
				t.Errorf("the denial does not say %s:\n%v", tt.why, err)
			}
			noRunCommand(t, l)
		})
	}
}

// The same request passes the gate once policy allows it: the denials
// above are the policy's, not a broken path to the hosts.
func TestAllowedGrantReachesTheHosts(t *testing.T) {
	l := startPolicyLab(t, 0)
	oncall := l.service(t, "oncall")
	l.Server.ResetCalls()
	_, err := oncall.Grant(context.Background(), access.Request{
		Targets: []string{productionID}, Reason: "INC-8 production outage", Duration: time.Hour,
		CA: newCA(t), PublicKey: publicKey(t), Requester: "bob@example.com",
	})
	var denied *policy.DeniedError
	if errors.As(err, &denied) {
		t.Fatalf("on-call refused production: %v", err)
	}
	// Model nodes run no program, so provisioning itself fails; what
	// matters here is that the request went out.
	sent := 0
	for call, n := range l.Server.Calls() {
		if strings.HasSuffix(call, "SendCommand") {
			sent += n
		}
	}
	if sent == 0 {
		t.Fatalf("an allowed grant sent no Run Command (err %v)", err)
	}
}

func TestDeniedExtendAndAddedTargetTouchNoHost(t *testing.T) {
	l := startPolicyLab(t, 0)
	ops := l.service(t, "ops")
	ca := newCA(t)
	now := time.Now().UTC().Truncate(time.Second)
	g := &access.Grant{
		ID: "ar-00000000000000aa", Username: "pp-abcdefghij", Requester: "alice@example.com",
		Reason: "INC-7 restart the web tier", IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		Targets:     []access.Target{{InstanceID: stagingID, Status: access.Active}},
		PublicKey:   publicKey(t),
		CAPublicKey: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey()))),
	}
	l.Server.ResetCalls()
	_, err := ops.Extend(context.Background(), "operator@example.com", g, ca, 5*time.Hour)
	if err == nil || !strings.Contains(err.Error(), stagingID) || !strings.Contains(err.Error(), "no policy") {
		t.Errorf("extending past the ops cap: %v", err)
	}
	_, err = ops.SetTargets(context.Background(), "operator@example.com", g, ca, []string{stagingID, productionID})
	if err == nil || !strings.Contains(err.Error(), productionID) || !strings.Contains(err.Error(), `"production-only-oncall"`) {
		t.Errorf("adding production: %v", err)
	}
	noRunCommand(t, l)

	// Shortening takes access away, so policy is not asked: even a grant
	// policy would no longer allow may end sooner.
	g.Reason = "no ticket any more"
	_, err = ops.Extend(context.Background(), "operator@example.com", g, ca, 30*time.Minute)
	var denied *policy.DeniedError
	if errors.As(err, &denied) {
		t.Errorf("shortening was refused by policy: %v", err)
	}
	if l.Server.Calls()["AmazonSSM.SendCommand"] == 0 {
		t.Errorf("shortening sent nothing to the host: %v (calls %v)", err, l.Server.Calls())
	}
}

func TestMissingParameterDeniesNamingIt(t *testing.T) {
	l := startPolicyLab(t, 0)
	p, err := policy.Load(context.Background(), "ssm:///passport/absent", l.ssm)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Authorize(policy.Request{Subject: "alice", Groups: []string{"admins"}, Targets: []policy.Instance{{ID: stagingID}}, Duration: time.Hour, Reason: "INC-1 x"}).Err()
	if err == nil || !strings.Contains(err.Error(), "SSM parameter /passport/absent does not exist") {
		t.Errorf("no policy: %v", err)
	}
}

func TestEC2TagsReadsTheLabsTags(t *testing.T) {
	l := startPolicyLab(t, 0)
	tags, err := policy.EC2Tags{Client: l.ec2}.Tags(context.Background(), []string{stagingID, productionID, "i-0c000000000000003"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(tags); got != "map[i-0a000000000000001:map[Env:staging Name:web-1] i-0b000000000000002:map[Env:production Name:web-2]]" {
		t.Errorf("tags: %s", got)
	}
	// A request of 200 targets, the most one takes: EC2 counts the type
	// filter among its 200 values a call.
	ids := []string{stagingID}
	for i := range 199 {
		ids = append(ids, fmt.Sprintf("i-0d%015x", i))
	}
	tags, err = policy.EC2Tags{Client: l.ec2}.Tags(context.Background(), ids)
	if err != nil || tags[stagingID]["Env"] != "staging" {
		t.Errorf("the tags of 200 instances: %v, %v", tags[stagingID], err)
	}
}

// On real hosts: a denied request leaves users, sshd's configuration and
// sudoers exactly as they were on every target, the allowed one included.
func TestDeniedGrantLeavesSandboxHostsAsTheyWere(t *testing.T) {
	l := startPolicyLab(t, 2)
	var ids []string
	before := map[string]string{}
	for _, h := range l.Hosts {
		id := h.Info().InstanceID
		ids = append(ids, id)
		before[id] = hostState(t, h)
	}
	if env := l.Hosts[1].Info().Tags["Env"]; env != "production" {
		t.Fatalf("the lab's second host is %q, not production", env)
	}
	l.Server.ResetCalls()
	_, err := l.service(t, "ops").Grant(context.Background(), access.Request{
		Targets: ids, Reason: "INC-9 look at the logs", CA: newCA(t), PublicKey: publicKey(t), Requester: "alice@example.com",
	})
	var denied *policy.DeniedError
	if !errors.As(err, &denied) || len(denied.Targets) != 1 || denied.Targets[0].ID != ids[1] {
		t.Fatalf("ops asking for staging and production: %v", err)
	}
	noRunCommand(t, l)
	for _, h := range l.Hosts {
		id := h.Info().InstanceID
		if after := hostState(t, h); after != before[id] {
			t.Errorf("%s changed after a denied request:\nbefore:\n%s\nafter:\n%s", id, before[id], after)
		}
	}
}

// hostState is what a grant would change on a host.
func hostState(t *testing.T, h *sandbox.Host) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := h.Run(ctx, node.Script{
		Document: fleet.ShellScript,
		Source:   "cat /etc/passwd /etc/group; ls -la /etc/ssh/sshd_config.d /etc/sudoers.d /home 2>&1; ls -R /etc/passport /var/lib/passport 2>&1",
		Timeout:  time.Minute,
	})
	if err != nil {
		t.Fatalf("reading %s: %v", h.Info().InstanceID, err)
	}
	return string(res.Stdout)
}

// Policy kept as a SecureString is read decrypted; one that does not parse
// is an error naming the parameter and the line.
func TestParameterStoreVariants(t *testing.T) {
	l := startPolicyLab(t, 0)
	ctx := context.Background()
	put := func(name, value string, typ ssmtypes.ParameterType) {
		t.Helper()
		if _, err := l.ssm.PutParameter(ctx, &ssmsdk.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ, Overwrite: aws.Bool(true)}); err != nil {
			t.Fatal(err)
		}
	}
	put("/passport/secure", `@id("all") permit (principal, action, resource);`, ssmtypes.ParameterTypeSecureString)
	p, err := policy.Load(ctx, "ssm:///passport/secure", l.ssm)
	if err != nil || p.Len() != 1 {
		t.Fatalf("SecureString policy: %v", err)
	}
	put("/passport/broken", "@id(\"a\")\npermit (principal, action, resource)\nwhen { context.sudo == };", ssmtypes.ParameterTypeString)
	_, err = policy.Load(ctx, "ssm:///passport/broken", l.ssm)
	if err == nil || !strings.Contains(err.Error(), "ssm:///passport/broken does not parse") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("unparsable policy: %v", err)
	}
}
