package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
	"github.com/passport-access/terraform-provider-passport/internal/policy"
)

// principal is a signed-in caller: established once, at the edge, from
// the token or cookie the call came with, and passed to every action.
type principal struct {
	Name    string      `json:"name"`
	Kind    policy.Kind `json:"kind"`
	Groups  []string    `json:"groups,omitempty"`
	Expires time.Time   `json:"expires"`
	// token is the ledger key of the token the call came with; cookie
	// says it came in the browser's cookie.
	token  string
	cookie bool
}

func (p *principal) api() api.Principal {
	return api.Principal{Name: p.Name, Kind: string(p.Kind), Groups: p.Groups, ExpiresAt: p.Expires}
}

// Kinds of ledger entries the service keeps, shared by every replica.
const (
	tokenEntry = "token" // a service token, by its SHA-256
	codeEntry  = "code"  // a one-time login code, by its SHA-256
	loginEntry = "login" // a pending SAML sign-in, by its AuthnRequest ID
	onceEntry  = "once"  // a value accepted once: a SAML assertion, a signed AWS login
	idemEntry  = "idem"  // a create's idempotency key, by caller and key
)

// cookieName is the browser's session cookie; its value is a token.
const cookieName = api.SessionCookie

// tokenPrefix marks Passport's tokens, so a leaked one is recognisable
// (and secret scanners can be taught it).
const tokenPrefix = "ppt_"

// tokenShape is a token as issued: the prefix and 32 random bytes.
var tokenShape = regexp.MustCompile(`^ppt_[A-Za-z0-9_-]{43}$`)

// newSecret is prefix and 32 random bytes, base64url.
func newSecret(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// digest is how a secret is kept: its SHA-256, so the ledger holds no way in.
func digest(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// issueToken makes a token for p, kept in the ledger by its digest until
// p's sign-in ends.
func (s *Server) issueToken(ctx context.Context, p principal) (string, error) {
	tok := newSecret(tokenPrefix)
	value, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	if err := s.cfg.Ledger.PutEntry(ctx, ledger.Entry{Kind: tokenEntry, Key: digest(tok), Value: value, Expires: p.Expires}); err != nil {
		return "", fmt.Errorf("recording the new token: %w", err)
	}
	return tok, nil
}

// errUnauthenticated is what a call without a valid sign-in gets. It says
// what to do, and never which part of a presented token was wrong.
func unauthenticated(msg string) *apiError {
	return &apiError{code: api.CodeUnauthenticated, msg: msg}
}

// caller finds who made r: a bearer token, else the browser's cookie.
func (s *Server) caller(r *http.Request) (*principal, error) {
	tok, fromCookie := "", false
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, value, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil, unauthenticated("the Authorization header must be \"Bearer <token>\": sign in with passport login --server, or with your AWS identity")
		}
		tok = strings.TrimSpace(value)
	} else if c, err := r.Cookie(cookieName); err == nil {
		tok, fromCookie = c.Value, true
	}
	if tok == "" {
		return nil, unauthenticated("sign in first: passport login --server " + s.cfg.URL.String() + " (people), or your AWS identity (machines)")
	}
	if !tokenShape.MatchString(tok) {
		return nil, unauthenticated("the token is not a Passport token: sign in again")
	}
	e, err := s.cfg.Ledger.GetEntry(r.Context(), tokenEntry, digest(tok))
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil, unauthenticated("the token has expired or was signed out: sign in again")
	case err != nil:
		return nil, &apiError{code: api.CodeUnavailable, msg: "the service cannot read its ledger to check the token; try again shortly", log: err}
	}
	var p principal
	if err := json.Unmarshal(e.Value, &p); err != nil || p.Name == "" || !p.Kind.Valid() {
		return nil, &apiError{code: api.CodeInternal, msg: "the service failed on this call; it has been logged", log: fmt.Errorf("token entry does not decode: %v", err)}
	}
	if !s.cfg.Now().Before(p.Expires) {
		return nil, unauthenticated("the token has expired: sign in again")
	}
	p.token, p.cookie = digest(tok), fromCookie
	return &p, nil
}

type principalKey struct{}

// signedIn serves h for signed-in callers only, each within its rate.
func (s *Server) signedIn(h func(http.ResponseWriter, *http.Request, *principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.caller(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="passport"`)
			s.fail(w, r, err)
			return
		}
		// A call from outside is charged once: a portal page makes its API
		// calls in process, within the page's own call, and a person pays
		// for the page they open, not for each of its parts.
		first := true
		if c, ok := r.Context().Value(callKey{}).(*callInfo); ok {
			first = c.signedInAs(p.Name)
		}
		if first && s.limited(w, r, s.rate, string(p.Kind)+":"+p.Name) {
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)), p)
	})
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, p *principal) {
	s.write(w, http.StatusOK, p.api())
}

// logout revokes the token the call came with, on every replica at once.
func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := s.cfg.Ledger.DeleteEntry(r.Context(), tokenEntry, p.token); err != nil {
		s.fail(w, r, &apiError{code: api.CodeUnavailable, msg: "the token could not be revoked: the ledger is unreachable; try again", log: err})
		return
	}
	if p.cookie {
		http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	s.write(w, http.StatusOK, api.HealthStatus{Status: "ok", Version: s.cfg.Version})
}
