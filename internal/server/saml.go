package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/crewjam/saml"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/identity"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// SAMLConfig makes the service a SAML service provider of the
// organisation's IdP. Register it there with the entity ID and the ACS URL
// (both shown at /saml/metadata) and a groups attribute.
type SAMLConfig struct {
	// Metadata is the IdP's: the only trusted issuer and signing keys.
	Metadata *saml.EntityDescriptor
	// EntityID is the service's entity ID at the IdP, the audience every
	// response must name; the service URL's /saml/metadata when empty.
	EntityID string
	// GroupsAttribute names the attribute listing a person's groups;
	// identity.DefaultGroupsAttribute when empty.
	GroupsAttribute string

	acsURL string
}

func (c *SAMLConfig) complete(base *url.URL) error {
	if c.Metadata == nil {
		return errors.New("server: SAML needs the IdP's metadata")
	}
	if c.EntityID == "" {
		c.EntityID = base.JoinPath(api.PathSAMLMeta).String()
	}
	c.acsURL = base.JoinPath(api.PathSAMLACS).String()
	return nil
}

// Sign-in windows: a pending SAML sign-in waits for the person at the IdP,
// a login code for the CLI that asked for it.
const (
	pendingLoginTTL = 10 * time.Minute
	loginCodeTTL    = 2 * time.Minute
)

// pendingLogin is a sign-in the service sent to the IdP, kept in the
// ledger under its AuthnRequest ID so that any replica may receive the
// response.
type pendingLogin struct {
	// Next is where a browser goes once signed in.
	Next string `json:"next,omitempty"`
	// CLI, for a `passport login --server`: where to send the code, the
	// state to echo, and the challenge the code's verifier must meet.
	CLI *cliLogin `json:"cli,omitempty"`
}

type cliLogin struct {
	Redirect  string `json:"redirect"`
	State     string `json:"state"`
	Challenge string `json:"challenge"`
}

// loginCode is what a one-time code stands for until the CLI trades it.
type loginCode struct {
	Principal principal `json:"principal"`
	Challenge string    `json:"challenge"`
}

func (s *Server) sp() *saml.ServiceProvider {
	acs, _ := url.Parse(s.cfg.SAML.acsURL)
	meta := s.cfg.URL.JoinPath(api.PathSAMLMeta)
	return &saml.ServiceProvider{EntityID: s.cfg.SAML.EntityID, AcsURL: *acs, MetadataURL: *meta, IDPMetadata: s.cfg.SAML.Metadata,
		AuthnNameIDFormat: saml.UnspecifiedNameIDFormat}
}

func (s *Server) samlMetadata(w http.ResponseWriter, r *http.Request) {
	if s.cfg.SAML == nil {
		s.fail(w, r, &apiError{code: api.CodeNotFound, msg: "this service has no SAML sign-in configured"})
		return
	}
	out, err := xml.MarshalIndent(s.sp().Metadata(), "", "  ")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(append([]byte(xml.Header), out...))
}

// safeNext keeps a browser's destination on this service: a path, never
// another site ("//evil", "https://evil", "/\evil").
var safeNext = regexp.MustCompile(`^/[A-Za-z0-9/_.-]*$`)

// samlLogin sends a browser to the IdP; it comes back signed in, with a
// cookie.
func (s *Server) samlLogin(w http.ResponseWriter, r *http.Request) {
	next := r.URL.Query().Get("next")
	if next != "" && (!safeNext.MatchString(next) || strings.HasPrefix(next, "//")) {
		s.page(w, http.StatusBadRequest, "The next page must be a path on this service.")
		return
	}
	s.startLogin(w, r, pendingLogin{Next: next})
}

// cliLogin starts `passport login --server`: the CLI opens this in the
// browser with a loopback redirect, a state and an S256 code challenge.
func (s *Server) cliLogin(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := loopbackRedirect(q.Get("redirect_uri"))
	if err != nil {
		s.page(w, http.StatusBadRequest, "This sign-in link is broken: "+err.Error()+". Run passport login again.")
		return
	}
	challenge, state := q.Get("code_challenge"), q.Get("state")
	switch {
	case q.Get("code_challenge_method") != "S256":
		s.page(w, http.StatusBadRequest, "This sign-in link is broken: code_challenge_method must be S256. Run passport login again.")
		return
	case !reChallenge.MatchString(challenge):
		s.page(w, http.StatusBadRequest, "This sign-in link is broken: code_challenge must be 43 base64url characters (SHA-256). Run passport login again.")
		return
	case !reState.MatchString(state):
		s.page(w, http.StatusBadRequest, "This sign-in link is broken: state must be 16 to 128 base64url characters. Run passport login again.")
		return
	}
	s.startLogin(w, r, pendingLogin{CLI: &cliLogin{Redirect: redirect, State: state, Challenge: challenge}})
}

var (
	reChallenge = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	reState     = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
)

// loopbackRedirect accepts only http://127.0.0.1:PORT/path or [::1]: the
// code must go to the CLI on this machine and nowhere else.
func loopbackRedirect(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", errors.New("redirect_uri must be http://127.0.0.1:<port>/<path> with no query")
	}
	host, port, err := net.SplitHostPort(u.Host)
	ip := net.ParseIP(host)
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port || ip == nil || !ip.IsLoopback() {
		return "", errors.New("redirect_uri must be on a loopback address with a port (1 to 65535)")
	}
	return u.String(), nil
}

func (s *Server) startLogin(w http.ResponseWriter, r *http.Request, pending pendingLogin) {
	if s.cfg.SAML == nil {
		s.page(w, http.StatusNotFound, "This Passport service has no SAML sign-in configured.")
		return
	}
	if s.limited(w, r, s.login, clientAddr(r)) {
		return
	}
	sp := s.sp()
	sso := sp.GetSSOBindingLocation(saml.HTTPRedirectBinding)
	if sso == "" {
		s.page(w, http.StatusInternalServerError, "The IdP's metadata has no HTTP-Redirect sign-in endpoint; an administrator must fix the service's configuration.")
		return
	}
	req, err := sp.MakeAuthenticationRequest(sso, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		s.cfg.Log.Error("making an AuthnRequest", "error", err.Error())
		s.page(w, http.StatusInternalServerError, "The sign-in could not be started; it has been logged.")
		return
	}
	value, _ := json.Marshal(pending)
	if err := s.cfg.Ledger.PutEntry(r.Context(), ledger.Entry{Kind: loginEntry, Key: req.ID, Value: value, Expires: s.cfg.Now().Add(pendingLoginTTL)}); err != nil {
		s.cfg.Log.Error("recording a pending sign-in", "error", err.Error())
		s.page(w, http.StatusServiceUnavailable, "The sign-in could not be started: the service's ledger is unreachable. Try again shortly.")
		return
	}
	// The AuthnRequest's own random ID doubles as the RelayState: the
	// response comes back with it, to whichever replica the IdP reaches.
	to, err := req.Redirect(req.ID, sp)
	if err != nil {
		s.page(w, http.StatusInternalServerError, "The sign-in could not be started; it has been logged.")
		return
	}
	http.Redirect(w, r, to.String(), http.StatusFound)
}

// maxACSForm bounds the IdP's form post.
const maxACSForm = identity.MaxResponseSize*4/3 + 4096

// samlACS receives the IdP's signed response for a pending sign-in.
func (s *Server) samlACS(w http.ResponseWriter, r *http.Request) {
	if s.cfg.SAML == nil {
		s.page(w, http.StatusNotFound, "This Passport service has no SAML sign-in configured.")
		return
	}
	if s.limited(w, r, s.login, clientAddr(r)) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxACSForm)
	if err := r.ParseForm(); err != nil {
		s.page(w, http.StatusBadRequest, "The IdP's answer is too large or not a form.")
		return
	}
	relay := r.PostForm.Get("RelayState")
	if relay == "" || len(relay) > 128 {
		s.page(w, http.StatusBadRequest, "The IdP's answer names no sign-in of this service. Start again from passport login or the sign-in page.")
		return
	}
	// Taking the pending sign-in makes the response good for one use on
	// every replica: a second post of it finds nothing.
	e, err := s.cfg.Ledger.TakeEntry(r.Context(), loginEntry, relay)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		s.page(w, http.StatusBadRequest, "This sign-in is unknown, has expired or was already completed. Start again from passport login or the sign-in page.")
		return
	case err != nil:
		s.cfg.Log.Error("reading a pending sign-in", "error", err.Error())
		s.page(w, http.StatusServiceUnavailable, "The service's ledger is unreachable. Try again shortly.")
		return
	}
	var pending pendingLogin
	if err := json.Unmarshal(e.Value, &pending); err != nil {
		s.page(w, http.StatusInternalServerError, "The sign-in could not be completed; it has been logged.")
		return
	}
	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(r.PostForm.Get("SAMLResponse")), ""))
	if err != nil || len(raw) == 0 {
		s.page(w, http.StatusBadRequest, "The IdP's answer holds no SAML response.")
		return
	}
	claims, err := identity.Verify(raw, identity.Options{
		Metadata: s.cfg.SAML.Metadata, SPEntityID: s.cfg.SAML.EntityID, ACSURL: s.cfg.SAML.acsURL,
		GroupsAttribute: s.cfg.SAML.GroupsAttribute, RequestID: relay, Now: s.cfg.Now,
	})
	if err != nil {
		s.page(w, http.StatusForbidden, "Sign-in refused: "+err.Error())
		return
	}
	if err := s.cfg.Ledger.UseOnce(r.Context(), onceEntry, "saml:"+claims.AssertionID, claims.Expires); err != nil {
		s.page(w, http.StatusForbidden, "Sign-in refused: this assertion was already used.")
		return
	}
	p := principal{Name: claims.Subject, Kind: policy.Person, Groups: claims.Groups, Expires: minTime(claims.Expires, s.cfg.Now().Add(s.cfg.TokenTTL))}
	if pending.CLI != nil {
		s.sendCode(w, r, p, pending.CLI)
		return
	}
	tok, err := s.issueToken(r.Context(), p)
	if err != nil {
		s.cfg.Log.Error("issuing a token", "error", err.Error())
		s.page(w, http.StatusServiceUnavailable, "The sign-in could not be completed: the service's ledger is unreachable. Try again shortly.")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", Expires: p.Expires, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	if pending.Next != "" {
		http.Redirect(w, r, pending.Next, http.StatusSeeOther)
		return
	}
	s.page(w, http.StatusOK, "Signed in to Passport as "+p.Name+".")
}

// sendCode hands a CLI sign-in back to the CLI's loopback listener as a
// one-time code, never as the token: a URL lands in browser history.
func (s *Server) sendCode(w http.ResponseWriter, r *http.Request, p principal, cli *cliLogin) {
	code := newSecret("ppc_")
	value, _ := json.Marshal(loginCode{Principal: p, Challenge: cli.Challenge})
	if err := s.cfg.Ledger.PutEntry(r.Context(), ledger.Entry{Kind: codeEntry, Key: digest(code), Value: value, Expires: s.cfg.Now().Add(loginCodeTTL)}); err != nil {
		s.cfg.Log.Error("recording a login code", "error", err.Error())
		s.page(w, http.StatusServiceUnavailable, "The sign-in could not be completed: the service's ledger is unreachable. Try again shortly.")
		return
	}
	to, _ := url.Parse(cli.Redirect)
	to.RawQuery = url.Values{"code": {code}, "state": {cli.State}}.Encode()
	http.Redirect(w, r, to.String(), http.StatusSeeOther)
}

// exchangeCode trades a login code and its verifier for a token, once.
func (s *Server) exchangeCode(w http.ResponseWriter, r *http.Request) {
	if s.limited(w, r, s.login, clientAddr(r)) {
		return
	}
	var in api.LoginCode
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if !strings.HasPrefix(in.Code, "ppc_") || len(in.Code) > 64 {
		s.fail(w, r, invalidField("code", "code is not a Passport login code"))
		return
	}
	if len(in.Verifier) < 43 || len(in.Verifier) > 128 {
		s.fail(w, r, invalidField("verifier", "verifier must be 43 to 128 characters"))
		return
	}
	e, err := s.cfg.Ledger.TakeEntry(r.Context(), codeEntry, digest(in.Code))
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		s.fail(w, r, unauthenticated("the login code is unknown, expired or already used: run passport login again"))
		return
	case err != nil:
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the service cannot read its ledger; try again shortly", log: err})
		return
	}
	var lc loginCode
	if err := json.Unmarshal(e.Value, &lc); err != nil {
		s.fail(w, r, err)
		return
	}
	sum := sha256.Sum256([]byte(in.Verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(lc.Challenge)) != 1 {
		s.fail(w, r, unauthenticated("the verifier does not match the sign-in's challenge: run passport login again"))
		return
	}
	s.sendToken(w, r, lc.Principal)
}

// sendToken issues a token for p and answers with it.
func (s *Server) sendToken(w http.ResponseWriter, r *http.Request, p principal) {
	tok, err := s.issueToken(r.Context(), p)
	if err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the token could not be recorded: the ledger is unreachable; try again", log: err})
		return
	}
	s.write(w, http.StatusOK, api.Token{Token: tok, ExpiresAt: p.Expires, Principal: p.api()})
}

func (s *Server) awsLoginInfo(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Machines == nil {
		s.fail(w, r, &apiError{code: api.CodeNotFound, msg: "this Passport service does not let machines sign in with their AWS identity"})
		return
	}
	s.write(w, http.StatusOK, s.cfg.Machines.Info())
}

// awsLogin signs a machine in with a signed sts:GetCallerIdentity.
func (s *Server) awsLogin(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Machines == nil {
		s.fail(w, r, &apiError{code: api.CodeNotFound, msg: "this Passport service does not let machines sign in with their AWS identity"})
		return
	}
	if s.limited(w, r, s.login, clientAddr(r)) {
		return
	}
	var in api.AWSLogin
	if err := read(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := s.cfg.Machines.Verify(r.Context(), in)
	var refused *awsidentity.RefusedError
	var upstream *awsidentity.UpstreamError
	switch {
	case errors.As(err, &refused):
		s.fail(w, r, unauthenticated(refused.Error()))
		return
	case errors.As(err, &upstream):
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "AWS sign-in could not be checked: " + upstream.Error() + "; try again shortly"})
		return
	case err != nil:
		s.fail(w, r, &apiError{code: api.CodeInternal, msg: "the service failed on this call; it has been logged", log: err})
		return
	}
	s.sendToken(w, r, principal{Name: id.ARN, Kind: policy.Machine, Expires: s.cfg.Now().Add(s.cfg.MachineTokenTTL)})
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

var pageTemplate = template.Must(template.New("page").Parse(
	`<!doctype html><html lang="en"><meta charset="utf-8"><title>Passport</title><h1>Passport</h1><p id="result">{{.}}</p></html>`))

// page answers a browser with one escaped sentence.
func (s *Server) page(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTemplate.Execute(w, msg); err != nil {
		s.cfg.Log.Warn("writing a page", "error", fmt.Sprint(err))
	}
}
