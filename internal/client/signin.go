package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
)

// The environment variables every client of the service reads (the CLI
// and the Terraform provider alike), so that a team sets them once.
const (
	// EnvServer is the service's URL: the default for --server and the
	// provider's server setting. Unset means direct mode.
	EnvServer = "PASSPORT_SERVER"
	// EnvServerCA is a PEM bundle the service's TLS certificate chains to,
	// for a private CA (the lab's, a company's), instead of the system's
	// roots.
	EnvServerCA = "PASSPORT_SERVER_CA"
)

// SignIn says how Open signs in.
type SignIn struct {
	// Options configure the client; a Token given there is used as it is.
	Options
	// Machine, when set, gives the AWS configuration a machine signs in
	// with when no person's token is kept (CI, automation). Nil signs in
	// as a person only.
	Machine func(context.Context) (aws.Config, error)
	// Now is the clock tokens are checked against; time.Now when nil.
	Now func() time.Time
	// MachineSignedIn, when set, is told who a machine sign-in made the
	// caller, so that a command can say it acts as the machine.
	MachineSignedIn func(api.Principal)
}

// Open returns a client of the service at server, signed in as the
// caller, chosen in this order:
//
//   - SignIn.Token, when given;
//   - the person's token: PASSPORT_TOKEN, or the one `passport login
//     --server` kept for this server;
//   - the machine's AWS identity, when SignIn.Machine is set and the
//     service lets machines sign in: a signed sts:GetCallerIdentity,
//     signed again whenever the service says the token has ended.
//
// A person whose kept token has ended is told to sign in again, never
// signed in as the machine instead: their requests would silently be made
// by someone else.
func Open(ctx context.Context, server string, s SignIn) (*Client, error) {
	c, err := New(server, s.Options)
	if err != nil {
		return nil, err
	}
	if s.Token != "" {
		return c, nil
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	tok, err := LoadToken(server, now())
	switch {
	case err == nil:
		return c.WithToken(tok.Token), nil
	case s.Machine == nil || errors.Is(err, ErrTokenExpired) || !errors.Is(err, ErrNoToken):
		return nil, err
	}
	notSignedIn := err
	cfg, err := s.Machine(ctx)
	if err == nil {
		err = haveCredentials(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (no AWS credentials to sign in as a machine either: %v)", notSignedIn, err)
	}
	info, err := c.AWSLoginInfo(ctx)
	if CodeOf(err) == api.CodeNotFound {
		return nil, fmt.Errorf("%w (this service does not let machines sign in with their AWS identity)", notSignedIn)
	}
	if err != nil {
		return nil, err
	}
	var who api.Principal
	login := func(ctx context.Context) (string, error) {
		signed, err := awsidentity.Sign(ctx, cfg, info)
		if err != nil {
			return "", err
		}
		tok, err := c.AWSLogin(ctx, signed)
		if err != nil {
			return "", fmt.Errorf("signing in to the Passport service at %s with your AWS identity: %w", c.base.Redacted(), err)
		}
		who = tok.Principal
		return tok.Token, nil
	}
	first, err := login(ctx)
	if err != nil {
		return nil, err
	}
	if s.MachineSignedIn != nil {
		s.MachineSignedIn(who)
	}
	m := *c
	m.renew = &renewal{token: first, login: login}
	return &m, nil
}

// haveCredentials says whether cfg holds credentials to sign with, before
// anything is asked of the service.
func haveCredentials(ctx context.Context, cfg aws.Config) error {
	if cfg.Credentials == nil {
		return errors.New("none configured")
	}
	if _, anonymous := cfg.Credentials.(aws.AnonymousCredentials); anonymous {
		return errors.New("they are anonymous")
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		// The SDK's own error lists every provider it tried, at length.
		return errors.New("none found (AWS_PROFILE, the AWS_ACCESS_KEY_ID pair, or an instance or task role)")
	}
	return nil
}
