package awsidentity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// Defaults for a Verifier's zero fields.
const (
	DefaultMaxAge  = 5 * time.Minute
	DefaultTimeout = 10 * time.Second
)

// maxAnswer bounds what is read of STS's answer (a real one is under 1 KiB).
const maxAnswer = 64 << 10

// Verifier checks machine logins for the Passport service. Set the fields
// once and share it; Verify is safe for concurrent use.
type Verifier struct {
	// STSEndpoint is the STS endpoint the service itself uses, such as
	// https://sts.us-east-1.amazonaws.com (or a lab's). Every login is
	// sent here and nowhere else, whatever its URL says.
	STSEndpoint string
	// Region is the region logins are signed for, STSEndpoint's.
	Region string
	// ServerID names this service; logins must sign it in
	// X-Passport-Server-ID. Every replica of one service has the same.
	ServerID string
	// HTTPClient sends logins to STS; http.DefaultClient's transport when
	// nil. Redirects are never followed, whatever it says.
	HTTPClient *http.Client
	// Timeout bounds each call to STS; DefaultTimeout when zero.
	Timeout time.Duration
	// Now is the clock signing dates are checked against; time.Now when nil.
	Now func() time.Time
	// MaxAge is how far a login's signing date may be from Now, either
	// way; DefaultMaxAge when zero.
	MaxAge time.Duration
	// Once records that key has been used, and returns an error wrapping
	// ErrUsed if it was already: a login is good once, across every
	// replica sharing the store behind it. Until is when the key may be
	// forgotten (after it, the signing date is too old anyway). Any other
	// error fails the login as the service's own failure. Required; use
	// MemoryOnce for a single process.
	Once func(ctx context.Context, key string, until time.Time) error
}

// Identity is who a verified login belongs to.
type Identity struct {
	// ARN is the principal as policy names it (Passport::Machine::"<ARN>"):
	// an IAM role for an assumed role's session, else the ARN STS answered.
	ARN string
	// CallerARN is the ARN STS answered, session name and all.
	CallerARN string
	// SessionName is an assumed role's session name, "" for others.
	SessionName string
	Account     string
	// UserID is STS's unique id for the caller (AROA...:session for roles).
	UserID string
}

// Validate says whether the Verifier is configured well enough to check
// logins: a service should call it when it starts.
func (v *Verifier) Validate() error {
	if _, err := parseEndpoint(v.STSEndpoint); err != nil {
		return fmt.Errorf("the AWS sign-in's STS endpoint %w", err)
	}
	switch {
	case v.Region == "":
		return errors.New("the AWS sign-in needs the region of its STS endpoint")
	case v.ServerID == "":
		return errors.New("the AWS sign-in needs a server ID for logins to sign (the service's URL is a good one)")
	case !validHeaderValue(v.ServerID):
		return errors.New("the AWS sign-in's server ID has a control character, which no HTTP header can carry")
	case v.Once == nil:
		return errors.New("the AWS sign-in needs a one-time-use store (Verifier.Once), or a captured login could be used again")
	case v.MaxAge < 0 || v.Timeout < 0:
		return errors.New("the AWS sign-in's MaxAge and Timeout must not be negative")
	}
	return nil
}

// Info is what GET /v1/login/aws tells a machine.
func (v *Verifier) Info() api.AWSLoginInfo {
	return api.AWSLoginInfo{ServerID: v.ServerID, STSEndpoint: v.STSEndpoint, Region: v.Region}
}

// Verify checks a login, asks STS who signed it and returns that identity.
// A login the caller must fix is a *RefusedError; an STS that gives no
// usable answer is an *UpstreamError; anything else (a misconfigured
// Verifier, a failing Once store, ctx ending) is the service's own.
func (v *Verifier) Verify(ctx context.Context, login api.AWSLogin) (Identity, error) {
	if err := v.Validate(); err != nil {
		return Identity{}, err
	}
	endpoint, _ := parseEndpoint(v.STSEndpoint)
	rules := loginRules{endpoint: endpoint, region: v.Region, serverID: v.ServerID, now: v.now(), maxAge: v.maxAge()}
	signed, err := rules.check(login)
	if err != nil {
		return Identity{}, err
	}
	// Before STS is asked, so a replay costs STS nothing.
	if err := v.Once(ctx, onceKey(signed.signature), signed.signedAt.Add(rules.maxAge)); err != nil {
		if errors.Is(err, ErrUsed) {
			return Identity{}, refused("headers.Authorization", "this signed request has been used already: sign a new one for each login")
		}
		return Identity{}, fmt.Errorf("recording the AWS sign-in's one-time use: %w", err)
	}
	caller, err := v.ask(ctx, endpoint.String(), signed)
	if err != nil {
		return Identity{}, err
	}
	principal, session, err := PrincipalARN(caller.ARN)
	if err != nil {
		return Identity{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s answered an ARN Passport cannot use: %v", endpoint, err)}
	}
	if account := strings.Split(principal, ":")[4]; caller.Account != account {
		return Identity{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s answered the account %q for an ARN of another account", endpoint, clip(caller.Account, 20))}
	}
	return Identity{ARN: principal, CallerARN: caller.ARN, SessionName: session, Account: caller.Account, UserID: caller.UserID}, nil
}

// ask sends the login to the service's own STS endpoint.
func (v *Verifier) ask(ctx context.Context, endpoint string, l *signedLogin) (stsCaller, error) {
	callCtx, cancel := context.WithTimeout(ctx, v.timeout())
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, endpoint, bytes.NewReader(l.body))
	if err != nil {
		return stsCaller{}, err
	}
	req.Host = l.host
	req.Header = l.header

	client := http.Client{Transport: http.DefaultTransport}
	if v.HTTPClient != nil {
		client = *v.HTTPClient
	}
	// A redirect would take a signed request to a host the operator never
	// chose.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return stsCaller{}, ctx.Err()
		case callCtx.Err() != nil:
			return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s did not answer within %s", endpoint, v.timeout())}
		}
		return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s could not be reached", endpoint), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s answered with a redirect (HTTP %d to %q), and Passport follows none: set the service's STS endpoint to the one that answers", endpoint, resp.StatusCode, clip(resp.Header.Get("Location"), 200))}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		if callCtx.Err() != nil && ctx.Err() == nil {
			return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s did not finish its answer within %s", endpoint, v.timeout())}
		}
		return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("reading the answer of STS at %s", endpoint), Err: err}
	}
	if len(body) > maxAnswer {
		return stsCaller{}, &UpstreamError{Reason: fmt.Sprintf("STS at %s answered more than %d bytes, which no GetCallerIdentity answer is", endpoint, maxAnswer)}
	}
	return readAnswer(endpoint, resp.StatusCode, body, l.signature, l.token, l.header.Get("Authorization"))
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) maxAge() time.Duration {
	if v.MaxAge > 0 {
		return v.MaxAge
	}
	return DefaultMaxAge
}

func (v *Verifier) timeout() time.Duration {
	if v.Timeout > 0 {
		return v.Timeout
	}
	return DefaultTimeout
}
