package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/crewjam/saml"
)

// LoginConfig describes one SP-initiated sign-in.
type LoginConfig struct {
	// Metadata is the IdP's metadata; MetadataSource says where it came
	// from, for the session record.
	Metadata       *saml.EntityDescriptor
	MetadataSource string
	// SPEntityID is Passport's entity ID at the IdP.
	SPEntityID      string
	GroupsAttribute string
	// Open sends the person to the IdP: it opens a browser or prints the
	// URL. Login waits for the response after Open returns.
	Open func(url string) error
	// Now, AllowedSkew, MaxSession and InsecureAllowSHA1 are as in Options.
	Now               func() time.Time
	AllowedSkew       time.Duration
	MaxSession        time.Duration
	InsecureAllowSHA1 bool
}

// acsPath is where the local ACS listens on its random loopback port.
const acsPath = "/saml/acs"

// Login runs an SP-initiated SAML 2.0 sign-in: it serves an assertion
// consumer service on a random 127.0.0.1 port, sends the person to the IdP
// with an AuthnRequest (HTTP-Redirect binding), and waits for the signed
// response (HTTP-POST binding). It returns the verified session, to be
// saved with SaveSession; it saves nothing itself. Cancel ctx to give up.
func Login(ctx context.Context, cfg LoginConfig) (Session, error) {
	if cfg.Metadata == nil || cfg.SPEntityID == "" || cfg.Open == nil {
		return Session{}, errors.New("login needs the IdP metadata, an SP entity ID and a way to open the browser")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Session{}, fmt.Errorf("cannot listen on loopback for the IdP's response: %w", err)
	}
	acsURL := url.URL{Scheme: "http", Host: ln.Addr().String(), Path: acsPath}
	sp := saml.ServiceProvider{EntityID: cfg.SPEntityID, AcsURL: acsURL, IDPMetadata: cfg.Metadata}
	sso := sp.GetSSOBindingLocation(saml.HTTPRedirectBinding)
	if sso == "" {
		ln.Close()
		return Session{}, fmt.Errorf("IdP metadata %q has no HTTP-Redirect SingleSignOnService", cfg.Metadata.EntityID)
	}
	req, err := sp.MakeAuthenticationRequest(sso, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		ln.Close()
		return Session{}, err
	}
	a := &acs{
		relayState: randomToken(),
		opts: Options{
			Metadata: cfg.Metadata, SPEntityID: cfg.SPEntityID, ACSURL: acsURL.String(),
			GroupsAttribute: cfg.GroupsAttribute, RequestID: req.ID,
			Now: cfg.Now, AllowedSkew: cfg.AllowedSkew, MaxSession: cfg.MaxSession,
			InsecureAllowSHA1: cfg.InsecureAllowSHA1,
		},
		done: make(chan loginResult, 1),
	}
	redirect, err := req.Redirect(a.relayState, &sp)
	if err != nil {
		ln.Close()
		return Session{}, err
	}
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	// Shutdown, unlike Close, lets the browser receive its result page.
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()

	if err := cfg.Open(redirect.String()); err != nil {
		return Session{}, err
	}
	select {
	case <-ctx.Done():
		return Session{}, fmt.Errorf("no response from the IdP: %w", context.Cause(ctx))
	case r := <-a.done:
		if r.err != nil {
			return Session{}, r.err
		}
		return Session{
			Subject: r.claims.Subject, Groups: r.claims.Groups, Expires: r.claims.Expires,
			Issuer: r.claims.Issuer, SPEntityID: cfg.SPEntityID, ACSURL: acsURL.String(),
			Metadata: cfg.MetadataSource, Response: r.raw,
		}, nil
	}
}

type loginResult struct {
	claims Claims
	raw    []byte
	err    error
}

// acs is the assertion consumer service of one login. It answers exactly
// one response carrying the login's RelayState: that request ID is then
// consumed, and a replayed response is refused.
type acs struct {
	relayState string
	opts       Options
	done       chan loginResult

	mu       sync.Mutex
	consumed bool
}

// maxForm bounds the POST body: a base64 response of MaxResponseSize plus
// the RelayState and form encoding.
const maxForm = MaxResponseSize*4/3 + 4096

func (a *acs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != acsPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "the IdP must POST its response here", http.StatusMethodNotAllowed)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		a.page(w, http.StatusRequestEntityTooLarge, "The response is too large or not a form: "+err.Error())
		return
	}
	// Any local process or web page can POST to a loopback port; only one
	// that knows this login's RelayState is heard at all.
	if r.PostForm.Get("RelayState") != a.relayState {
		a.page(w, http.StatusBadRequest, "This response does not belong to the running passport login.")
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.consumed {
		a.page(w, http.StatusConflict, "This sign-in was already completed; a response is accepted once. Run passport login again.")
		return
	}
	a.consumed = true

	raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(r.PostForm.Get("SAMLResponse")), ""))
	if err == nil && len(raw) == 0 {
		err = errors.New("the form has no SAMLResponse")
	}
	var claims Claims
	if err == nil {
		claims, err = Verify(raw, a.opts)
	} else {
		err = fmt.Errorf("SAML response refused: it is not base64: %v", err)
	}
	defer func() { a.done <- loginResult{claims: claims, raw: raw, err: err} }()
	if err != nil {
		a.page(w, http.StatusForbidden, "Sign-in refused: "+err.Error())
		return
	}
	msg := "Signed in as " + claims.Subject
	if len(claims.Groups) > 0 {
		msg += " (" + strings.Join(claims.Groups, ", ") + ")"
	}
	a.page(w, http.StatusOK, msg+". You can close this window.")
}

var pageTemplate = template.Must(template.New("page").Parse(
	`<!doctype html><title>Passport</title><h1>Passport</h1><p id="result">{{.}}</p>`))

func (a *acs) page(w http.ResponseWriter, status int, msg string) { ResultPage(w, status, msg) }

// ResultPage answers the browser at the end of a CLI's sign-in with one
// escaped sentence, in the element #result that tests (and people) read.
func ResultPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	pageTemplate.Execute(w, msg)
}

func randomToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
