// Package lab assembles Passport's local AWS: one loopback endpoint that
// speaks the real AWS wire protocols (Systems Manager with Session Manager,
// the ssmmessages data channel, KMS and STS), sandbox Linux hosts with real
// sshd, and model nodes for scale. Tests start a lab in-process with Start;
// `passport lab up` starts one for people and `passport lab down` cleans up
// after one that was killed.
package lab

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/ec2"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
	"github.com/passport-access/terraform-provider-passport/internal/lab/kms"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/rootfs"
	"github.com/passport-access/terraform-provider-passport/internal/lab/s3"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/lab/session"
	"github.com/passport-access/terraform-provider-passport/internal/lab/ssm"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sts"
	"github.com/passport-access/terraform-provider-passport/internal/lab/winhost"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// Options says what to start.
type Options struct {
	// Dir holds the lab's state: lab.json, env.sh and every host's disk.
	// It is created; a lab already running there is refused.
	Dir string
	// Listen is the endpoint's address; 127.0.0.1 on a free port by default.
	Listen string
	// Region is the region clients must sign for; us-east-1 by default.
	Region string
	// Hosts is the number of sandbox Linux hosts (real sshd; needs root).
	Hosts int
	// Schedulers runs cron and atd in every sandbox host
	// (sandbox.Config.Schedulers).
	Schedulers bool
	// Releases are the Debian releases sandbox hosts run (codenames or
	// versions, built by package rootfs), given to the hosts in turn;
	// empty for the machine's own root, the fast default.
	Releases []string
	// Init is what release hosts boot as their first process: "systemd"
	// (the release's own), "lab" (the lab's init), or "" for systemd where
	// this machine allows it (sandbox.SystemdAvailable) and the lab's
	// otherwise.
	Init string
	// ModelNodes is the number of model nodes (no OS; for scale).
	ModelNodes int
	// WindowsHosts is the number of lab Windows hosts: models that run
	// only Passport's shipped PowerShell programs and answer a password
	// check on port 3389 (package winhost). No root needed.
	WindowsHosts int
	// People are who may sign in at the lab's SAML IdP;
	// idp.DemoUsers() when empty.
	People []idp.User
	// Policy is the Cedar policy put in Parameter Store at /passport/policy;
	// the lab's own (policy.cedar) when empty.
	Policy string
	// WebsocketLifetime is how long the message gateway keeps a data
	// channel's websocket before closing it, as AWS closes them after
	// about an hour; session.DefaultWebsocketLifetime when zero.
	// WebsocketDrops, when set, also drops them at random, after that
	// long on average (fault injection).
	WebsocketLifetime, WebsocketDrops time.Duration
	// Now is the clock Session Manager tokens expire by, and Windows
	// hosts' accounts, so tests can move it; time.Now when nil. Signatures are always checked against
	// the real time, as AWS does.
	Now func() time.Time
}

// Lab is a running lab.
type Lab struct {
	Dir      string
	Region   string
	Endpoint string // http://127.0.0.1:PORT, for every service
	// AccessKeyID and SecretAccessKey are the operator's, as in Operator.
	AccessKeyID     string
	SecretAccessKey string
	// Operator may do anything: it sets the lab up, and direct mode runs
	// as it. Service may do exactly what the Passport service role's
	// policy (examples/iam/passport-service.json) allows. Requester gets
	// access through Passport and may do nothing on the access path.
	Operator, Service, Requester Credentials

	Server   *awsjson.Server
	SSM      *ssm.Service
	S3       *s3.Service
	Sessions *session.Service
	KMS      *kms.Service
	STS      *sts.Service
	EC2      *ec2.Service
	IdP      *idp.IdP
	Hosts    []*sandbox.Host
	Models   []*node.Model
	Windows  []*winhost.Host

	extraEnv  []string
	listener  net.Listener
	http      *http.Server
	closeOnce sync.Once
	closeErr  error
}

// PolicyParameter is where the lab keeps its Cedar policy, Passport's
// default policy source.
const PolicyParameter = "/passport/policy"

// RecordingsBucket is the lab's bucket for session recordings, the name
// examples/iam/passport-service.json grants.
const RecordingsBucket = "passport-recordings"

//go:embed policy.cedar
var labPolicy string

// Policy is the lab's own Cedar policy (policy.cedar), for tests that
// start a lab with it and a few statements more.
func Policy() string { return labPolicy }

// AccountID is the account every lab resource belongs to, and OperatorARN
// the identity behind the credentials a lab prints.
const (
	AccountID   = "123456789012"
	OperatorARN = "arn:aws:iam::" + AccountID + ":user/lab-operator"
)

// Start starts a lab and returns when every host accepts SSH connections.
// On error nothing it started is left running.
func Start(ctx context.Context, opts Options) (l *Lab, err error) {
	if opts.Dir == "" {
		return nil, errors.New("lab: Dir is required")
	}
	if opts.Hosts < 0 || opts.ModelNodes < 0 || opts.WindowsHosts < 0 {
		return nil, fmt.Errorf("lab: host counts must not be negative (hosts %d, model nodes %d, Windows hosts %d)", opts.Hosts, opts.ModelNodes, opts.WindowsHosts)
	}
	if opts.WindowsHosts > maxWindowsHosts {
		return nil, fmt.Errorf("lab: %d Windows hosts is more than this lab supports (%d)", opts.WindowsHosts, maxWindowsHosts)
	}
	if opts.Hosts > 200 {
		return nil, fmt.Errorf("lab: %d sandbox hosts is more than this lab supports (200); use model nodes for scale", opts.Hosts)
	}
	if opts.Hosts > 0 {
		if err := sandbox.Available(); err != nil {
			return nil, err
		}
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir); err != nil {
		return nil, err
	}

	l = &Lab{Dir: dir, Region: opts.Region, AccessKeyID: accessKeyID(), SecretAccessKey: secret()}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	l.Server = awsjson.NewServer(awsjson.Config{Region: l.Region, Credentials: map[string]string{l.AccessKeyID: l.SecretAccessKey}})
	l.S3 = s3.New(s3.Config{Verify: l.Server.VerifyS3, Authorize: l.Server.Authorize, Now: opts.Now})
	put, err := agentPut(l.S3)
	if err != nil {
		return nil, err
	}
	l.SSM = ssm.New(ssm.Config{Region: l.Region, AccountID: AccountID, Caller: l.callerARN, PutOutput: put})
	l.Sessions = session.New(session.Config{
		Lookup:   l.sessionTarget,
		Endpoint: func() string { return l.Endpoint },
		Now:      opts.Now,
		Owner:    l.callerARN,
		RunAsTag: func(ctx context.Context) string { return l.caller(ctx).Tags["SSMSessionRunAs"] },
	})
	l.Sessions.SetWebsocketLifetime(opts.WebsocketLifetime)
	l.Sessions.SetWebsocketFaults(opts.WebsocketDrops)
	// Session Manager's calls belong to the AmazonSSM service on AWS; the
	// data channel (ssmmessages) shares the lab's one endpoint.
	api := l.SSM.API()
	for name, op := range l.Sessions.Operations() {
		api.Operations[name] = op
	}
	l.Server.Register(api)
	l.Server.Handle("/v1/data-channel/", l.Sessions)
	l.KMS = kms.New(kms.Config{Region: l.Region, AccountID: AccountID})
	l.Server.Register(l.KMS.API())
	l.STS = sts.New(l.Server)
	if err := l.addIdentities(); err != nil {
		return nil, err
	}
	// EC2 (DescribeTags, for policy) and STS both take form posts to "/";
	// the signature's scope tells them apart.
	l.EC2 = ec2.New(l.Server, l.instanceTags)
	l.Server.Handle("POST /{$}", ec2.Route(l.EC2, l.STS))
	// Every other path is S3's (path-style /bucket/key, or a bucket in
	// the Host); Passport's bucket for recordings is there from the start.
	l.Server.Handle("/", l.S3)
	l.S3.CreateBucket(RecordingsBucket)

	l.listener, err = net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("lab: cannot listen on %s: %w", opts.Listen, err)
	}
	l.Endpoint = "http://" + l.listener.Addr().String()
	// The IdP's entity ID and URLs carry the endpoint's port, known only now.
	if l.IdP, err = idp.New(idp.Config{URL: l.Endpoint + "/saml", Users: opts.People}); err != nil {
		return nil, err
	}
	l.Server.Handle("/saml/", l.IdP.Handler())
	l.http = &http.Server{Handler: l.Server, ReadHeaderTimeout: 10 * time.Second}
	// Data channels batch their writes on the connections they arrive on.
	go l.http.Serve(ssmsession.NewBatchListener(l.listener))

	for i := range opts.ModelNodes {
		m := node.NewModel(node.Info{
			InstanceID:   instanceID(),
			ComputerName: fmt.Sprintf("model-%d", i+1),
			IPAddress:    "198.51.100." + strconv.Itoa(i%250+1),
			PlatformType: node.Linux,
			PlatformName: "Model",
			AgentVersion: sandbox.AgentVersion,
			Tags:         map[string]string{"Name": fmt.Sprintf("model-%d", i+1), "Env": "scale"},
		})
		l.Models = append(l.Models, m)
		l.SSM.AddNode(m)
	}
	if opts.Policy == "" {
		opts.Policy = labPolicy
	}
	if err := l.SSM.SetParameter(PolicyParameter, opts.Policy); err != nil {
		return nil, fmt.Errorf("lab: storing the policy: %w", err)
	}
	hostNet := loopbackNet()
	if err := l.bootHosts(ctx, hostNet, opts); err != nil {
		return nil, err
	}
	if err := l.startWindows(hostNet, opts.WindowsHosts, opts.Now); err != nil {
		return nil, err
	}
	if err := l.writeState(); err != nil {
		return nil, err
	}
	return l, nil
}

// bootHosts boots opts.Hosts sandbox hosts on 127.x.y.1 and up (net is
// the random 127.x.y), in parallel: each takes about a second, most of it
// waiting on sshd.
func (l *Lab) bootHosts(ctx context.Context, net string, opts Options) error {
	n := opts.Hosts
	if n == 0 {
		return nil
	}
	roots, systemd, err := releaseRoots(opts)
	if err != nil {
		return err
	}
	l.Hosts = make([]*sandbox.Host, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := instanceID()
			name := fmt.Sprintf("web-%d", i+1)
			l.Hosts[i], errs[i] = sandbox.Boot(ctx, sandbox.Config{
				Dir:        filepath.Join(l.Dir, "hosts", id),
				InstanceID: id,
				Hostname:   name,
				Address:    fmt.Sprintf("%s.%d", net, i+1),
				Tags:       demoTags(name, i),
				// The lab's directory holds every host's disk and the
				// lab's secret key; no host may read another's.
				Hidden:     []string{l.Dir},
				Schedulers: opts.Schedulers,
				Root:       pick(roots, i),
				Systemd:    systemd,
			})
		}()
	}
	wg.Wait()
	var failed []error
	for i, h := range l.Hosts {
		if errs[i] != nil {
			failed = append(failed, errs[i])
			continue
		}
		l.SSM.AddNode(h)
	}
	return errors.Join(failed...)
}

// releaseRoots finds the built root filesystems of opts.Releases, and
// whether their hosts boot systemd.
func releaseRoots(opts Options) ([]string, bool, error) {
	var roots []string
	for _, r := range opts.Releases {
		root, err := rootfs.Find(rootfs.DefaultCache(), r)
		if err != nil {
			return nil, false, fmt.Errorf("lab: %w", err)
		}
		roots = append(roots, root)
	}
	switch opts.Init {
	case "lab":
		return roots, false, nil
	case "systemd":
		if len(roots) == 0 {
			return nil, false, errors.New("lab: systemd hosts need a Debian release (--release); the machine's own root has no systemd to boot")
		}
		if err := sandbox.SystemdAvailable(); err != nil {
			return nil, false, fmt.Errorf("lab: hosts cannot boot systemd on this machine: %w", err)
		}
		return roots, true, nil
	case "":
		return roots, len(roots) > 0 && sandbox.SystemdAvailable() == nil, nil
	}
	return nil, false, fmt.Errorf("lab: Init %q is not systemd, lab or empty", opts.Init)
}

func pick(roots []string, i int) string {
	if len(roots) == 0 {
		return ""
	}
	return roots[i%len(roots)]
}

// maxWindowsHosts keeps Windows hosts on 127.x.y.201 to .250, above the
// sandbox hosts' addresses.
const maxWindowsHosts = 50

// startWindows starts n lab Windows hosts on net's .201 and up and
// registers them with SSM; sessions reach them through DialPort.
func (l *Lab) startWindows(net string, n int, now func() time.Time) error {
	for i := range n {
		id := instanceID()
		name := fmt.Sprintf("win-%d", i+1)
		h, err := winhost.New(winhost.Config{
			InstanceID:   id,
			ComputerName: name,
			Address:      fmt.Sprintf("%s.%d", net, 201+i),
			AgentVersion: sandbox.AgentVersion,
			Tags:         demoTags(name, i),
			Now:          now,
		})
		if err != nil {
			return err
		}
		l.Windows = append(l.Windows, h)
		l.SSM.AddNode(h)
	}
	return nil
}

// instanceTags are every node's instance tags, by instance id, as EC2
// DescribeTags reports them.
func (l *Lab) instanceTags() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, n := range l.SSM.Nodes() {
		info := n.Info()
		out[info.InstanceID] = info.Tags
	}
	return out
}

// caller is the principal behind the request being served, as the lab's
// STS knows it; callerARN is its ARN.
func (l *Lab) caller(ctx context.Context) sts.Identity {
	id, _ := l.STS.Identity(awsjson.CallerAccessKey(ctx))
	return id
}

func (l *Lab) callerARN(ctx context.Context) string { return l.caller(ctx).Arn }

// sessionTarget finds a node a Session Manager session can reach: sandbox
// and Windows hosts can; model nodes have no ports to forward to.
func (l *Lab) sessionTarget(id string) (session.Target, bool) {
	n, ok := l.SSM.Node(id)
	if !ok {
		return nil, false
	}
	t, ok := n.(session.Target)
	return t, ok
}

// demoTags gives hosts the tags the examples and policies refer to:
// alternating staging and production environments.
func demoTags(name string, i int) map[string]string {
	env := "staging"
	if i%2 == 1 {
		env = "production"
	}
	return map[string]string{"Name": name, "Env": env, "Team": "platform"}
}

// Env returns the environment variables that point the AWS SDKs, the AWS
// CLI and the Passport provider at the lab. AWS_ENDPOINT_URL reaches every
// client that reads it (AWS CLI 2.13 and 1.29 on, boto3 1.28 on, the Go
// SDK v2), so that a service the lab does not
// serve fails here instead of reaching real AWS; the per-service variables
// are for clients that know only those. Older clients, Debian 12's AWS CLI
// 2.9 and python3-boto3 1.26 among them, read neither and need
// --endpoint-url or endpoint_url (docs/guides/lab.md). Both region
// variables are set because botocore reads only AWS_DEFAULT_REGION.
func (l *Lab) Env() []string {
	return append([]string{
		"AWS_ENDPOINT_URL=" + l.Endpoint,
		"AWS_ENDPOINT_URL_SSM=" + l.Endpoint,
		"AWS_ENDPOINT_URL_KMS=" + l.Endpoint,
		"AWS_ENDPOINT_URL_STS=" + l.Endpoint,
		"AWS_ENDPOINT_URL_SSMMESSAGES=" + l.Endpoint,
		"AWS_ENDPOINT_URL_EC2=" + l.Endpoint,
		"AWS_ENDPOINT_URL_S3=" + l.Endpoint,
		"AWS_REGION=" + l.Region,
		"AWS_DEFAULT_REGION=" + l.Region,
		"AWS_ACCESS_KEY_ID=" + l.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + l.SecretAccessKey,
		"PASSPORT_SAML_METADATA=" + l.IdP.MetadataURL(),
		// The lab keeps its own ledger, so the provider, the reconciler and
		// the audit commands share it and the user's default stays clean.
		"PASSPORT_LEDGER=sqlite://" + filepath.Join(l.Dir, "ledger.db"),
	}, append(l.identityEnv(), l.extraEnv...)...)
}

// Close stops every host and the endpoint and removes the lab's state. It
// is safe to call more than once.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		var errs []error
		if l.http != nil {
			errs = append(errs, l.http.Close())
		}
		if l.Sessions != nil {
			l.Sessions.Close()
		}
		if l.SSM != nil {
			l.SSM.Close()
		}
		for _, h := range l.Hosts {
			if h != nil {
				errs = append(errs, h.Close())
			}
		}
		for _, h := range l.Windows {
			errs = append(errs, h.Close())
		}
		errs = append(errs, os.RemoveAll(l.Dir))
		l.closeErr = errors.Join(errs...)
	})
	return l.closeErr
}

func instanceID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return "i-" + hex.EncodeToString(b)[:17]
}

// loopbackNet picks 127.x.y for the lab's hosts at random, so that labs
// started by parallel test packages do not fight over port 22.
func loopbackNet() string {
	x, _ := rand.Int(rand.Reader, big.NewInt(200))
	y, _ := rand.Int(rand.Reader, big.NewInt(256))
	return fmt.Sprintf("127.%d.%d", x.Int64()+20, y.Int64())
}

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"

func accessKeyID() string {
	b := make([]byte, 16)
	rand.Read(b)
	for i := range b {
		b[i] = keyAlphabet[int(b[i])%len(keyAlphabet)]
	}
	return "AKIA" + string(b)
}

func secret() string {
	b := make([]byte, 30)
	rand.Read(b)
	return hex.EncodeToString(b)[:40]
}
