// Package idp is the lab's SAML 2.0 identity provider: demo people with
// passwords and groups, a login form a real browser fills in, and signed
// responses for Passport's SP-initiated login. It is built on crewjam/saml's
// IdentityProvider; the people, the form and the pending sign-ins are ours.
//
// Any SP entity ID in Config.ServiceProviders may sign in, and only to an
// assertion consumer service on a loopback address: `passport login`
// listens on a random 127.0.0.1 port, so there is no fixed ACS to
// register, and a loopback ACS cannot hand the assertion to anyone else.
package idp

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// User is a demo person.
type User struct {
	Name     string   // the user name typed into the form, and the NameID
	Password string   // lab only; never use these anywhere else
	Email    string   // sent as the mail attribute
	Groups   []string // sent in the "groups" attribute
}

// DemoUsers are the lab's people when Config.Users is empty. Their
// passwords are printed by `passport lab up` and documented: they guard
// nothing but a loopback lab.
func DemoUsers() []User {
	return []User{
		{Name: "alice", Password: "alice-lab", Email: "alice@lab.passport.test", Groups: []string{"ops"}},
		{Name: "bob", Password: "bob-lab", Email: "bob@lab.passport.test", Groups: []string{"dev"}},
		{Name: "carol", Password: "carol-lab", Email: "carol@lab.passport.test", Groups: []string{"admins", "ops"}},
		{Name: "dave", Password: "dave-lab", Email: "dave@lab.passport.test", Groups: []string{"oncall"}},
		{Name: "erin", Password: "erin-lab", Email: "erin@lab.passport.test", Groups: []string{"admins"}},
	}
}

// GroupsAttribute is the attribute the lab IdP lists groups in.
const GroupsAttribute = "groups"

// Config configures an IdP.
type Config struct {
	// URL is the absolute URL Handler is served under, such as
	// http://127.0.0.1:PORT/saml; the metadata is URL/metadata and the
	// single sign-on service URL/sso.
	URL string
	// Users are the people who may sign in; DemoUsers when empty.
	Users []User
	// ServiceProviders are the SP entity IDs allowed to ask;
	// {"passport"} when empty.
	ServiceProviders []string
	// SessionDuration is the SessionNotOnOrAfter the IdP grants; 8h when
	// zero.
	SessionDuration time.Duration
	// Log receives one line per refused request; stderr when nil.
	Log io.Writer
}

// IdP is a running identity provider.
type IdP struct {
	idp      *saml.IdentityProvider
	base     *url.URL
	users    []User
	sps      []string
	duration time.Duration
	log      *log.Logger

	mu      sync.Mutex
	pending map[string]pendingLogin
}

// pendingLogin is an AuthnRequest that was validated and is waiting for
// its person to type a password. Keeping it here, rather than re-posting
// the request with the form, lets the person take their time: crewjam
// refuses a request older than 90 seconds.
type pendingLogin struct {
	req     *saml.IdpAuthnRequest
	expires time.Time
}

// Limits on what a stranger can make the IdP hold.
const (
	maxEncodedRequest = 16 << 10
	maxRequest        = 64 << 10
	maxPending        = 1024
	pendingFor        = 10 * time.Minute
	// Assertions are valid for delivery this long; the session itself
	// lasts SessionDuration.
	deliveryWindow = 5 * time.Minute
)

// New creates an IdP with a fresh signing key.
func New(cfg Config) (*IdP, error) {
	base, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || base.Scheme == "" || base.Host == "" {
		return nil, fmt.Errorf("idp: URL %q must be absolute, like http://127.0.0.1:8080/saml", cfg.URL)
	}
	users := cfg.Users
	if len(users) == 0 {
		users = DemoUsers()
	}
	sps := cfg.ServiceProviders
	if len(sps) == 0 {
		sps = []string{"passport"}
	}
	duration := cfg.SessionDuration
	if duration <= 0 {
		duration = 8 * time.Hour
	}
	out := cfg.Log
	if out == nil {
		out = os.Stderr
	}
	key, cert, err := newKey(base.Host)
	if err != nil {
		return nil, err
	}
	p := &IdP{base: base, users: users, sps: sps, duration: duration, log: log.New(out, "lab idp: ", 0), pending: map[string]pendingLogin{}}
	p.idp = &saml.IdentityProvider{
		Key:                     key,
		Certificate:             cert,
		Logger:                  p.log,
		MetadataURL:             *base.JoinPath("metadata"),
		SSOURL:                  *base.JoinPath("sso"),
		ServiceProviderProvider: p,
		AssertionMaker:          p,
		// crewjam signs with RSA-SHA1 unless told otherwise; Passport
		// refuses SHA-1, as it should refuse it from any IdP.
		SignatureMethod: dsig.RSASHA256SignatureMethod,
	}
	return p, nil
}

// MetadataURL is where the IdP's metadata is served.
func (p *IdP) MetadataURL() string { return p.idp.MetadataURL.String() }

// Metadata returns the IdP's metadata document.
func (p *IdP) Metadata() []byte {
	buf, _ := xml.MarshalIndent(p.idp.Metadata(), "", "  ")
	return buf
}

// Users returns the people who may sign in.
func (p *IdP) Users() []User { return slices.Clone(p.users) }

// Handler serves the metadata and the single sign-on service. Mount it at
// Config.URL's path, such as mux.Handle("/saml/", idp.Handler()).
func (p *IdP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+p.idp.MetadataURL.Path, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write(p.Metadata())
	})
	mux.HandleFunc("GET "+p.idp.SSOURL.Path, p.serveRequest)
	mux.HandleFunc("POST "+p.idp.SSOURL.Path, p.serveLogin)
	return mux
}

// serveRequest receives an AuthnRequest by the HTTP-Redirect binding and
// shows the login form.
func (p *IdP) serveRequest(w http.ResponseWriter, r *http.Request) {
	acs, err := requestedACS(r.URL.Query().Get("SAMLRequest"))
	if err != nil {
		p.refuse(w, http.StatusBadRequest, err)
		return
	}
	req, err := saml.NewIdpAuthnRequest(p.idp, r.WithContext(context.WithValue(r.Context(), acsKey{}, acs)))
	if err == nil {
		err = req.Validate()
	}
	if err != nil {
		p.refuse(w, http.StatusBadRequest, fmt.Errorf("the AuthnRequest is not acceptable: %w", err))
		return
	}
	token, err := p.remember(req)
	if err != nil {
		p.refuse(w, http.StatusServiceUnavailable, err)
		return
	}
	p.form(w, http.StatusOK, token, req.Request.Issuer.Value, "")
}

// serveLogin checks the form and answers the pending request with a
// signed response, posted to the SP by the browser.
func (p *IdP) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		p.refuse(w, http.StatusBadRequest, errors.New("the login form is malformed or too large"))
		return
	}
	token := r.PostForm.Get("token")
	p.mu.Lock()
	pl, ok := p.pending[token]
	p.mu.Unlock()
	if !ok || time.Now().After(pl.expires) {
		p.refuse(w, http.StatusBadRequest, errors.New("this sign-in page has expired or was used; start again with passport login"))
		return
	}
	user, ok := p.check(r.PostForm.Get("username"), r.PostForm.Get("password"))
	if !ok {
		p.form(w, http.StatusUnauthorized, token, pl.req.Request.Issuer.Value, "Wrong user name or password.")
		return
	}
	p.mu.Lock()
	_, still := p.pending[token]
	delete(p.pending, token)
	p.mu.Unlock()
	if !still {
		p.refuse(w, http.StatusBadRequest, errors.New("this sign-in page was already used; start again with passport login"))
		return
	}
	req := pl.req
	req.HTTPRequest = r
	req.Now = time.Now()
	if err := p.MakeAssertion(req, p.session(user, req.Now)); err != nil {
		p.refuse(w, http.StatusInternalServerError, err)
		return
	}
	if err := req.WriteResponse(w); err != nil {
		p.refuse(w, http.StatusInternalServerError, err)
	}
}

// check compares in constant time, and does the same work for unknown
// names, so the form does not reveal who exists.
func (p *IdP) check(name, password string) (User, bool) {
	got := sha256.Sum256([]byte(password))
	var found User
	ok := 0
	for _, u := range p.users {
		want := sha256.Sum256([]byte(u.Password))
		match := subtle.ConstantTimeCompare(got[:], want[:]) & subtle.ConstantTimeCompare([]byte(name), []byte(u.Name))
		if match == 1 {
			found = u
		}
		ok |= match
	}
	return found, ok == 1
}

func (p *IdP) session(u User, now time.Time) *saml.Session {
	return &saml.Session{
		ID:           randomHex(16),
		CreateTime:   now,
		ExpireTime:   now.Add(p.duration),
		Index:        randomHex(16),
		NameID:       u.Name,
		NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
		UserName:     u.Name,
		UserEmail:    u.Email,
		CustomAttributes: []saml.Attribute{{
			FriendlyName: GroupsAttribute, Name: GroupsAttribute,
			NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
			Values:     groupValues(u.Groups),
		}},
	}
}

func groupValues(groups []string) []saml.AttributeValue {
	var vs []saml.AttributeValue
	for _, g := range groups {
		vs = append(vs, saml.AttributeValue{Type: "xs:string", Value: g})
	}
	return vs
}

// MakeAssertion implements saml.AssertionMaker: crewjam's assertion, with
// the delivery window counted from now (not from when the form was shown)
// and the session's end stated, so Passport knows how long it may trust it.
func (p *IdP) MakeAssertion(req *saml.IdpAuthnRequest, s *saml.Session) error {
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, s); err != nil {
		return err
	}
	a := req.Assertion
	a.IssueInstant = req.Now
	a.Conditions.NotBefore = req.Now.Add(-time.Minute)
	a.Conditions.NotOnOrAfter = req.Now.Add(deliveryWindow)
	for i := range a.Subject.SubjectConfirmations {
		a.Subject.SubjectConfirmations[i].SubjectConfirmationData.NotOnOrAfter = req.Now.Add(deliveryWindow)
	}
	for i := range a.AuthnStatements {
		end := s.ExpireTime
		a.AuthnStatements[i].SessionNotOnOrAfter = &end
	}
	return nil
}

// remember keeps a validated request for the form's POST; each is answered
// once, so a request ID cannot be used twice.
func (p *IdP) remember(req *saml.IdpAuthnRequest) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for t, pl := range p.pending {
		if now.After(pl.expires) {
			delete(p.pending, t)
		}
	}
	if len(p.pending) >= maxPending {
		return "", errors.New("too many sign-ins are waiting for a password; try again in a few minutes")
	}
	token := randomHex(24)
	p.pending[token] = pendingLogin{req: req, expires: now.Add(pendingFor)}
	return token, nil
}

type acsKey struct{}

// requestedACS decodes an HTTP-Redirect SAMLRequest within fixed bounds
// (a deflate bomb stops at maxRequest) and returns the ACS it asks for,
// which must be on loopback.
func requestedACS(encoded string) (string, error) {
	if encoded == "" {
		return "", errors.New("the request carries no SAMLRequest")
	}
	if len(encoded) > maxEncodedRequest {
		return "", fmt.Errorf("the SAMLRequest is larger than %d bytes", maxEncodedRequest)
	}
	deflated, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", errors.New("the SAMLRequest is not base64")
	}
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(deflated)), maxRequest+1))
	if err != nil {
		return "", errors.New("the SAMLRequest is not deflated XML")
	}
	if len(raw) > maxRequest {
		return "", fmt.Errorf("the SAMLRequest inflates to more than %d bytes", maxRequest)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(raw, &req); err != nil {
		return "", fmt.Errorf("the SAMLRequest is not an AuthnRequest: %v", err)
	}
	// A Passport service on loopback may serve TLS (as `passport lab up`
	// and the provider's service-mode tests run it), so https is loopback
	// too when its host is.
	u, err := url.Parse(req.AssertionConsumerServiceURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !loopback(u.Hostname()) {
		return "", fmt.Errorf("the AuthnRequest's ACS %q is not on loopback; the lab IdP answers only local logins", req.AssertionConsumerServiceURL)
	}
	return u.String(), nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// GetServiceProvider implements saml.ServiceProviderProvider: a known SP
// entity ID, with the loopback ACS its request named.
func (p *IdP) GetServiceProvider(r *http.Request, id string) (*saml.EntityDescriptor, error) {
	acs, _ := r.Context().Value(acsKey{}).(string)
	if !slices.Contains(p.sps, id) || acs == "" {
		return nil, os.ErrNotExist
	}
	return &saml.EntityDescriptor{
		EntityID: id,
		SPSSODescriptors: []saml.SPSSODescriptor{{
			AssertionConsumerServices: []saml.IndexedEndpoint{{Binding: saml.HTTPPostBinding, Location: acs, Index: 1}},
		}},
	}, nil
}

var formTemplate = template.Must(template.New("form").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Passport lab sign-in</title></head>
<body>
<h1>Passport lab sign-in</h1>
<p>{{.SP}} asks who you are.</p>
{{if .Error}}<p id="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="token" value="{{.Token}}">
<p><label for="username">User name</label> <input id="username" name="username" autocomplete="username" required autofocus></p>
<p><label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button id="submit" type="submit">Sign in</button></p>
</form>
</body></html>
`))

func (p *IdP) form(w http.ResponseWriter, status int, token, sp, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	formTemplate.Execute(w, map[string]string{"Action": p.idp.SSOURL.Path, "Token": token, "SP": sp, "Error": msg})
}

func (p *IdP) refuse(w http.ResponseWriter, status int, err error) {
	p.log.Print(err)
	http.Error(w, "Passport lab IdP: "+err.Error(), status)
}

func newKey(host string) (*rsa.PrivateKey, *x509.Certificate, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes([]byte(randomHex(8))),
		Subject:      pkix.Name{CommonName: "Passport lab IdP " + host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("idp: cannot create the signing certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	return key, cert, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
