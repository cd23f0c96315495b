package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
	"github.com/passport-access/terraform-provider-passport/internal/targets"
)

// directFlags are what direct mode needs, the provider's direct-mode
// settings as flags with the same environment variables.
type directFlags struct {
	region, profile string
	ledger          string
	policy          string
	ca              string
}

func (f *directFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	fl.StringVar(&f.profile, "profile", "", "AWS profile (default: AWS_PROFILE)")
	fl.StringVar(&f.ledger, "ledger", "", "direct mode: the ledger, sqlite:///path or dynamodb://table (default: PASSPORT_LEDGER, else ~/.local/state/passport/ledger.db)")
	fl.StringVar(&f.policy, "policy", "", "direct mode: the administrators' Cedar policy, ssm:///<parameter> or file:///<path> (default: PASSPORT_POLICY, else "+policy.DefaultSource+")")
	fl.StringVar(&f.ca, "ca", os.Getenv("PASSPORT_CA"), "direct mode: the certificate authority that signs, the signer attribute of a passport_certificate_authority, e.g. kms:<key ARN> (env PASSPORT_CA)")
}

// directBroker runs the access core here, with the person's own AWS
// credentials, as the Terraform provider's direct mode does. It names the
// AWS caller as the requester.
type directBroker struct {
	f       *directFlags
	clients *awsconfig.Clients
	book    *ledger.Ledger
	core    *access.Service
	caller  string
}

// open reaches AWS and the ledger and finds who the caller is. The policy
// and the CA are read only by the calls that need them: an end must work
// when neither can be read.
func (f *directFlags) open(ctx context.Context) (*directBroker, error) {
	clients, err := awsconfig.Load(ctx, awsconfig.Settings{Region: f.region, Profile: f.profile})
	if err != nil {
		return nil, fmt.Errorf("direct mode (no --server) needs your AWS credentials: %w", err)
	}
	caller, err := awsidentity.Caller(ctx, clients.STS)
	if err != nil {
		return nil, fmt.Errorf("direct mode (no --server) needs your AWS credentials, or name a Passport service with --server (or PASSPORT_SERVER): %w", err)
	}
	url, err := ledger.Resolve(f.ledger)
	if err != nil {
		return nil, fmt.Errorf("--ledger: %w", err)
	}
	book, err := ledger.Open(ctx, url, ledger.Options{DynamoDB: ledger.DynamoDBOptions{Client: clients.DynamoDB}})
	if err != nil {
		return nil, fmt.Errorf("--ledger %s: %w", url, err)
	}
	source := cmp.Or(f.policy, os.Getenv("PASSPORT_POLICY"), policy.DefaultSource)
	core, err := access.New(access.Config{
		Fleet:      fleet.New(clients.SSM, fleet.Options{}),
		Ledger:     book,
		Authorizer: &lazyGate{source: source, clients: clients},
	})
	if err != nil {
		book.Close()
		return nil, err
	}
	return &directBroker{f: f, clients: clients, book: book, core: core, caller: caller}, nil
}

func (d *directBroker) server() string { return "" }
func (d *directBroker) close() error   { return d.book.Close() }

// lazyGate asks the administrators' policy, read on first use.
type lazyGate struct {
	source  string
	clients *awsconfig.Clients
	once    sync.Once
	gate    *policy.Gate
	err     error
}

func (g *lazyGate) Authorize(ctx context.Context, req policy.Request) error {
	g.once.Do(func() {
		p, err := policy.Load(ctx, g.source, g.clients.SSM)
		if err != nil {
			g.err = fmt.Errorf("--policy %s: %w", g.source, err)
			return
		}
		g.gate = &policy.Gate{Policy: p, Tags: policy.EC2Tags{Client: g.clients.EC2}}
	})
	if g.err != nil {
		return g.err
	}
	return g.gate.Authorize(ctx, req)
}

// Recording implements access.RecordingPolicy with the policy Authorize
// read (Authorize always comes first).
func (g *lazyGate) Recording(ctx context.Context, req policy.Request) ([]policy.RecordRule, error) {
	if g.gate == nil {
		return nil, errors.Join(errors.New("policy was not read before provisioning"), g.err)
	}
	return g.gate.Recording(ctx, req)
}

// signer opens the CA direct mode signs with.
func (d *directBroker) signer(ctx context.Context) (*sshca.CA, error) {
	if d.f.ca == "" {
		return nil, errors.New("--ca is required in direct mode: the signer attribute of your passport_certificate_authority (kms:<key ARN>), or set PASSPORT_CA; or name a Passport service with --server")
	}
	if err := sshca.CheckRef(d.f.ca); err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	ca, err := sshca.OpenRef(ctx, d.clients.KMS, d.f.ca)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	return ca, nil
}

func (d *directBroker) create(ctx context.Context, in createInput) (made, error) {
	ca, err := d.signer(ctx)
	if err != nil {
		return made{}, err
	}
	ids := in.targets
	names := map[string]string{}
	if len(in.tags) > 0 {
		found, err := targets.Find(ctx, d.clients.SSM, targets.Filter{Tags: in.tags, PingStatus: "Online"})
		if err != nil {
			return made{}, fmt.Errorf("--tag: looking the instances up in Systems Manager: %w", err)
		}
		for _, i := range found {
			if i.PlatformType == access.Linux || i.PlatformType == access.Windows {
				ids = append(ids, i.InstanceID)
				names[i.InstanceID] = i.ComputerName
			}
		}
		if len(ids) == 0 {
			return made{}, errors.New("--tag: no online Linux or Windows instance carries every one of these tags")
		}
	} else if found, err := instanceNames(ctx, d.clients.SSM, ids); err == nil {
		// Names are a convenience: ids stand in for them.
		names = found
	}
	req := access.Request{Reason: in.reason, Targets: ids, Duration: in.duration, CA: ca, PublicKey: in.key.line, Sudo: in.sudo, Requester: d.caller}
	// The request's id follows from the caller and the idempotency key, and
	// the ledger records an id once: a repeat finds the first request.
	sum := sha256.Sum256([]byte(d.caller + "\x00" + in.idempotencyKey))
	req.ID = "ar-" + hex.EncodeToString(sum[:8])
	if rec, err := d.book.Get(ctx, req.ID); err == nil {
		return made{req: recordView(rec), names: names}, nil
	}
	g, err := d.core.Grant(ctx, req)
	if err != nil {
		return made{}, err
	}
	return made{req: grantView(g, ledger.Active), passwords: g.Passwords, names: names}, nil
}

func (d *directBroker) extend(ctx context.Context, id string, dur time.Duration) (api.Request, error) {
	g, rec, err := d.core.Load(ctx, id)
	if err != nil {
		return api.Request{}, err
	}
	// Policy is asked about the requester, so only they extend.
	if rec.Requester != d.caller {
		return api.Request{}, fmt.Errorf("access request %s is %s's: only the requester extends it (policy is asked about them); you may end it", id, rec.Requester)
	}
	if rec.State != ledger.Active {
		return api.Request{}, fmt.Errorf("access request %s is %s: only an active request changes; make a new one", id, rec.State)
	}
	ca, err := d.signer(ctx)
	if err != nil {
		return api.Request{}, err
	}
	next, err := d.core.Extend(ctx, d.caller, g, ca, dur)
	if err != nil {
		return api.Request{}, err
	}
	return grantView(next, ledger.Active), nil
}

func (d *directBroker) end(ctx context.Context, id string) (api.Request, error) {
	g, rec, err := d.core.Load(ctx, id)
	if err != nil {
		return api.Request{}, err
	}
	if !rec.State.Closed() {
		if err := d.core.Revoke(ctx, d.caller, g); err != nil {
			return api.Request{}, err
		}
	}
	now, err := d.book.Get(ctx, id)
	if err != nil {
		return api.Request{}, err
	}
	return recordView(now), nil
}

// list lists the ledger's requests: the caller's, or with all everyone's,
// in the open states or the one named.
func (d *directBroker) list(ctx context.Context, all bool, state string) ([]api.Request, error) {
	states, err := listStates(state)
	if err != nil {
		return nil, err
	}
	var out []api.Request
	for _, st := range states {
		recs, err := d.book.List(ctx, st)
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if all || rec.Requester == d.caller {
				out = append(out, recordView(rec))
			}
		}
	}
	slices.SortFunc(out, func(a, b api.Request) int { return b.IssuedAt.Compare(a.IssuedAt) })
	return out, nil
}

// listStates are the states --state names: open (the default) or one.
func listStates(state string) ([]ledger.State, error) {
	if state == "" || state == "open" {
		return ledger.OpenStates(), nil
	}
	if !slices.Contains(ledger.States(), ledger.State(state)) {
		names := []string{"open"}
		for _, s := range ledger.States() {
			names = append(names, string(s))
		}
		return nil, fmt.Errorf("--state %.32q is not one of %v", state, names)
	}
	return []ledger.State{ledger.State(state)}, nil
}

// grantView is a grant as the API shows it, so both brokers print alike.
func grantView(g *access.Grant, state ledger.State) api.Request {
	v := api.Request{
		ID: g.ID, State: string(state), Username: g.Username, Requester: g.Requester, RequesterKind: string(cmp.Or(g.RequesterKind, policy.Person)),
		Groups: g.Groups, Reason: g.Reason, Sudo: g.Sudo, Duration: g.ExpiresAt.Sub(g.IssuedAt).String(),
		IssuedAt: g.IssuedAt.UTC(), ExpiresAt: g.ExpiresAt.UTC(), Certificate: g.Certificate, Serial: strconv.FormatUint(g.Serial, 10),
		PublicKey: g.PublicKey, CAPublicKey: g.CAPublicKey,
	}
	for _, t := range g.Targets {
		v.Targets = append(v.Targets, api.Target{InstanceID: t.InstanceID, Platform: cmp.Or(t.Platform, access.Linux), Status: string(t.Status), Address: t.Address, Detail: t.Detail})
	}
	return v
}

// recordView is a ledger record as the API shows it.
func recordView(rec ledger.Grant) api.Request {
	v := grantView(access.FromRecord(rec), rec.State)
	for i, t := range rec.Targets {
		if t.State != ledger.Active {
			v.Targets[i].Status = string(t.State)
		}
	}
	return v
}
