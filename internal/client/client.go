// Package client calls the Passport service: one method per route of its
// API, with the wire types of internal/api. The Terraform provider and the
// CLI use it when they are pointed at a service; a failed call comes back
// as an *api.Error that errors.As finds, with the service's code, the
// field at fault and its message.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// Client calls one Passport service.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
	// renew, when set, holds the token instead and signs in again when the
	// service says it has ended: a machine's token lasts an hour, less
	// than a long apply or a tunnel kept open for a day.
	renew *renewal
}

// renewal is a token that can be had again without a person.
type renewal struct {
	mu    sync.Mutex
	token string
	login func(context.Context) (string, error)
}

// current is the token to send.
func (r *renewal) current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.token
}

// again signs in anew unless another call already replaced the token that
// was refused.
func (r *renewal) again(ctx context.Context, refused string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.token != refused {
		return r.token, nil
	}
	tok, err := r.login(ctx)
	if err != nil {
		return "", err
	}
	r.token = tok
	return tok, nil
}

// Options configure a Client.
type Options struct {
	// CAFile is a PEM bundle the service's TLS certificate must chain to,
	// instead of the system's roots (a private CA, or the lab's).
	CAFile string
	// Token is a service token from a sign-in; empty for the login routes.
	Token string
	// HTTP replaces the transport entirely (tests).
	HTTP *http.Client
	// Timeout bounds one call; 15 minutes by default, since a grant on a
	// large fleet takes minutes.
	Timeout time.Duration
}

// New returns a client of the service at base (https://passport.example.com).
// Plain http is refused except to a loopback address: tokens travel on it.
func New(base string, o Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" {
		return nil, fmt.Errorf("server %q is not a URL: write https://passport.example.com", base)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("server %s uses plain http: tokens and certificates would cross the network unencrypted; use https (http is allowed on loopback only)", u.Redacted())
	}
	c := &Client{base: u, http: o.HTTP, token: o.Token}
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if o.CAFile != "" {
			pem, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading the service's CA bundle: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s holds no PEM certificate", o.CAFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		timeout := o.Timeout
		if timeout <= 0 {
			timeout = 15 * time.Minute
		}
		c.http = &http.Client{Transport: tr, Timeout: timeout,
			// A redirect would carry the token to wherever it points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return c, nil
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// URL is the service's base URL.
func (c *Client) URL() *url.URL { u := *c.base; return &u }

// WithToken is a copy of c that signs its calls with token.
func (c *Client) WithToken(token string) *Client {
	d := *c
	d.token, d.renew = token, nil
	return &d
}

// bearer is the token a call carries.
func (c *Client) bearer() string {
	if c.renew != nil {
		return c.renew.current()
	}
	return c.token
}

// Error is what a failed call returns when the service answered: the
// service's error, and the request as it now stands when the call changed
// hosts before it failed.
type Error struct {
	Err     *api.Error
	Request *api.Request
}

func (e *Error) Error() string { return e.Err.Message }

// Unwrap lets errors.As find the *api.Error.
func (e *Error) Unwrap() error { return e.Err }

// do sends in as JSON (when not nil) and decodes a 2xx answer into out.
// A renewable token the service no longer takes is renewed once and the
// call sent again.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, header http.Header, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	token := c.bearer()
	status, raw, err := c.send(ctx, method, path, query, header, body, token)
	if err == nil && status == http.StatusUnauthorized && c.renew != nil {
		if token, err = c.renew.again(ctx, token); err != nil {
			return fmt.Errorf("signing in to the Passport service at %s again: %w", c.base.Redacted(), err)
		}
		status, raw, err = c.send(ctx, method, path, query, header, body, token)
	}
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return decodeError(status, raw)
	}
	if out == nil || status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the Passport service's answer to %s %s is not what this client expects (%v): are client and service the same version?", method, path, err)
	}
	return nil
}

// send makes one HTTP call and returns the status and body of the answer.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, header http.Header, body []byte, token string) (int, []byte, error) {
	u := c.base.JoinPath(path)
	u.RawQuery = query.Encode()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("calling the Passport service at %s: %w", c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the Passport service's answer: %w", err)
	}
	return resp.StatusCode, raw, nil
}

// decodeError reads the service's error body; an answer without one (a
// proxy's page) becomes an error naming the status.
func decodeError(status int, raw []byte) error {
	var body struct {
		Error   *api.Error   `json:"error"`
		Request *api.Request `json:"request"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || body.Error == nil || body.Error.Code == "" {
		return &Error{Err: &api.Error{Code: codeFor(status), Status: status,
			Message: fmt.Sprintf("the Passport service answered %d %s without an error body: is something between you and it?", status, http.StatusText(status))}}
	}
	body.Error.Status = status
	if body.Error.Message == "" {
		// An error that says nothing would print as nothing.
		body.Error.Message = fmt.Sprintf("the Passport service answered %d %s (%.40q) without saying why", status, http.StatusText(status), body.Error.Code)
	}
	return &Error{Err: body.Error, Request: body.Request}
}

func codeFor(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return api.CodeUnauthenticated
	case http.StatusForbidden:
		return api.CodeDenied
	case http.StatusNotFound:
		return api.CodeNotFound
	case http.StatusTooManyRequests:
		return api.CodeRateLimited
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return api.CodeUnavailable
	}
	return api.CodeInternal
}

// CodeOf is the service's error code of err, or "" when err is not an
// answer from the service.
func CodeOf(err error) string {
	var e *api.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Health asks whether the service is up.
func (c *Client) Health(ctx context.Context) (api.HealthStatus, error) {
	var out api.HealthStatus
	return out, c.do(ctx, http.MethodGet, api.PathHealth, nil, nil, nil, &out)
}

// WhoAmI says who the client's token stands for.
func (c *Client) WhoAmI(ctx context.Context) (api.Principal, error) {
	var out api.Principal
	return out, c.do(ctx, http.MethodGet, api.PathWhoAmI, nil, nil, nil, &out)
}

// Logout revokes the client's token.
func (c *Client) Logout(ctx context.Context) error {
	return c.do(ctx, http.MethodPost, api.PathLogout, nil, nil, nil, nil)
}

// ExchangeCode trades a browser sign-in's one-time code and its verifier
// for a token.
func (c *Client) ExchangeCode(ctx context.Context, code, verifier string) (api.Token, error) {
	var out api.Token
	return out, c.do(ctx, http.MethodPost, api.PathLoginCode, nil, nil, api.LoginCode{Code: code, Verifier: verifier}, &out)
}

// AWSLoginInfo is what a machine needs to sign its login.
func (c *Client) AWSLoginInfo(ctx context.Context) (api.AWSLoginInfo, error) {
	var out api.AWSLoginInfo
	return out, c.do(ctx, http.MethodGet, api.PathLoginAWS, nil, nil, nil, &out)
}

// AWSLogin trades a signed sts:GetCallerIdentity for a token.
func (c *Client) AWSLogin(ctx context.Context, login api.AWSLogin) (api.Token, error) {
	var out api.Token
	return out, c.do(ctx, http.MethodPost, api.PathLoginAWS, nil, nil, login, &out)
}

// Create asks for access. idempotencyKey, when not empty, makes a retry
// of the same call find the request the first one made instead of
// granting twice.
func (c *Client) Create(ctx context.Context, in api.CreateRequest, idempotencyKey string) (api.Request, error) {
	var out api.Request
	var h http.Header
	if idempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	return out, c.do(ctx, http.MethodPost, api.PathRequests, nil, h, in, &out)
}

// Get reads one request.
func (c *Client) Get(ctx context.Context, id string) (api.Request, error) {
	var out api.Request
	return out, c.do(ctx, http.MethodGet, api.RequestPath(url.PathEscape(id), ""), nil, nil, nil, &out)
}

// ListOptions filter List.
type ListOptions struct {
	// All lists every request policy lets the caller view, not only theirs.
	All bool
	// State is open (the default) or one state.
	State string
	// Unreviewed lists the break-glass requests that owe a review,
	// whatever their state, instead.
	Unreviewed bool
}

// List lists requests, newest first.
func (c *Client) List(ctx context.Context, o ListOptions) ([]api.Request, error) {
	q := url.Values{}
	if o.All {
		q.Set("all", "true")
	}
	if o.State != "" {
		q.Set("state", o.State)
	}
	if o.Unreviewed {
		q.Set("unreviewed", "true")
	}
	var out api.RequestList
	return out.Requests, c.do(ctx, http.MethodGet, api.PathRequests, q, nil, nil, &out)
}

// Extend moves the end of a request's window to its start plus duration.
func (c *Client) Extend(ctx context.Context, id string, duration time.Duration) (api.Request, error) {
	var out api.Request
	return out, c.do(ctx, http.MethodPost, api.RequestPath(url.PathEscape(id), "extend"), nil, nil, api.ExtendRequest{Duration: duration.String()}, &out)
}

// SetTargets makes targets a request's hosts. passwordKey as in Create.
func (c *Client) SetTargets(ctx context.Context, id string, targets []string, passwordKey string) (api.Request, error) {
	var out api.Request
	return out, c.do(ctx, http.MethodPut, api.RequestPath(url.PathEscape(id), "targets"), nil, nil, api.TargetsRequest{Targets: targets, PasswordKey: passwordKey}, &out)
}

// End revokes a request now.
func (c *Client) End(ctx context.Context, id string) (api.Request, error) {
	var out api.Request
	return out, c.do(ctx, http.MethodPost, api.RequestPath(url.PathEscape(id), "end"), nil, nil, nil, &out)
}

// Approve approves a request that waits for approval (or its longer
// window), with an optional comment. The last required approval grants
// it, in this call.
func (c *Client) Approve(ctx context.Context, id, comment string) (api.Request, error) {
	var out api.Request
	return out, c.do(ctx, http.MethodPost, api.RequestPath(url.PathEscape(id), "approve"), nil, nil, api.Decision{Comment: comment}, &out)
}

// Deny ends a request that waits for approval (or drops its longer
// window), with a comment saying why.
func (c *Client) Deny(ctx context.Context, id, comment string) (api.Request, error) {
	var out api.Request
	return out, c.do(ctx, http.MethodPost, api.RequestPath(url.PathEscape(id), "deny"), nil, nil, api.Decision{Comment: comment}, &out)
}

// Review records the caller's review of a break-glass request, with a
// comment saying what they found.
func (c *Client) Review(ctx context.Context, id, comment string) (api.Request, error) {
	var out api.Request
	return out, c.do(ctx, http.MethodPost, api.RequestPath(url.PathEscape(id), "review"), nil, nil, api.Decision{Comment: comment}, &out)
}

// Check asks the request's hosts whether it still stands.
func (c *Client) Check(ctx context.Context, id string) (api.Health, error) {
	var out api.Health
	return out, c.do(ctx, http.MethodPost, api.RequestPath(url.PathEscape(id), "check"), nil, nil, nil, &out)
}

// StartSession opens a Session Manager session to a target of the
// caller's request, with the service's AWS identity.
func (c *Client) StartSession(ctx context.Context, id string, in api.SessionRequest) (api.Session, error) {
	var out api.Session
	return out, c.do(ctx, http.MethodPost, api.RequestPath(url.PathEscape(id), "sessions"), nil, nil, in, &out)
}

// TargetFilter selects instances for Targets.
type TargetFilter struct {
	Tags       map[string]string
	Platform   string
	PingStatus string
}

// Targets lists managed instances.
func (c *Client) Targets(ctx context.Context, f TargetFilter) ([]api.Instance, error) {
	q := url.Values{}
	for k, v := range f.Tags {
		q.Add("tag", k+"="+v)
	}
	if f.Platform != "" {
		q.Set("platform", f.Platform)
	}
	if f.PingStatus != "" {
		q.Set("ping_status", f.PingStatus)
	}
	var out api.InstanceList
	return out.Instances, c.do(ctx, http.MethodGet, api.PathTargets, q, nil, nil, &out)
}

// AuditFilter selects audit events.
type AuditFilter struct {
	Request, Person, Target string
	Since, Until            time.Time
	// Newest, when not zero, asks for only the newest this many events.
	Newest int
}

// Audit lists the audit events the caller may see, oldest first.
func (c *Client) Audit(ctx context.Context, f AuditFilter) ([]api.Event, error) {
	out, err := c.AuditList(ctx, f)
	return out.Events, err
}

// AuditList is Audit with whether older events were left out (when f
// asks for the newest only).
func (c *Client) AuditList(ctx context.Context, f AuditFilter) (api.EventList, error) {
	q := url.Values{}
	for k, v := range map[string]string{"request": f.Request, "person": f.Person, "target": f.Target} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339))
	}
	if f.Newest > 0 {
		q.Set("newest", strconv.Itoa(f.Newest))
	}
	var out api.EventList
	return out, c.do(ctx, http.MethodGet, api.PathAudit, q, nil, nil, &out)
}

// Verify asks the service to check the whole audit chain.
func (c *Client) Verify(ctx context.Context) (api.Verification, error) {
	var out api.Verification
	return out, c.do(ctx, http.MethodGet, api.PathVerify, nil, nil, nil, &out)
}

// ResumeSession reconnects a session the caller opened.
func (c *Client) ResumeSession(ctx context.Context, sessionID string) (api.Session, error) {
	var out api.Session
	return out, c.do(ctx, http.MethodPost, api.PathSessions+"/"+url.PathEscape(sessionID)+"/resume", nil, nil, nil, &out)
}

// EndSession terminates a session the caller opened.
func (c *Client) EndSession(ctx context.Context, sessionID string) error {
	return c.do(ctx, http.MethodPost, api.PathSessions+"/"+url.PathEscape(sessionID)+"/end", nil, nil, nil, nil)
}

// Preview asks what a create with these fields would meet: the targets it
// reaches and policy's answer, for its window and others. Nothing is
// recorded.
func (c *Client) Preview(ctx context.Context, in api.PreviewRequest) (api.Preview, error) {
	var out api.Preview
	return out, c.do(ctx, http.MethodPost, api.PathPreview, nil, nil, in, &out)
}
