package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// edge wraps every call: no response is cached (certificates, tokens and
// sealed passwords travel in them), bodies are size-limited, a panic
// becomes a 500 that names nothing inside, and each call is logged once
// without its headers, query or body, where secrets travel.
func (s *Server) edge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; form-action 'self'")
		limit := s.cfg.MaxBody
		if r.URL.Path == api.PathSAMLACS {
			// The IdP's signed answer can be far larger than any API body
			// (a person in many groups); the ACS bounds its form itself.
			limit = max(limit, maxACSForm)
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		call := &callInfo{}
		r = r.WithContext(context.WithValue(r.Context(), callKey{}, call))
		defer func() {
			if v := recover(); v != nil {
				s.cfg.Log.Error("panic serving a call", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				if !rec.wrote {
					s.fail(rec, r, &apiError{code: api.CodeInternal, msg: "the service failed on this call; it has been logged"})
				}
			}
			s.cfg.Log.Info("call", "method", r.Method, "path", r.URL.Path, "status", rec.status,
				"caller", call.name(), "took_ms", time.Since(start).Milliseconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection, so a long
// answer (a recording's asciicast) can extend its own write deadline.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// routes answers calls that name no route, or the wrong method, in the
// API's JSON error shape instead of ServeMux's plain text.
func (s *Server) routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// The mux's own answer says whether the path exists under another
		// method (405 with Allow) or not at all.
		probe := httptest.NewRecorder()
		h.ServeHTTP(probe, r)
		if allow := probe.Header().Get("Allow"); probe.Code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", allow)
			s.fail(w, r, &apiError{code: api.CodeMethodNotAllowed, msg: fmt.Sprintf("%s is not served on %s: use %s", r.Method, r.URL.Path, allow)})
			return
		}
		s.fail(w, r, &apiError{code: api.CodeNoRoute, msg: fmt.Sprintf("there is no %s: see the API document, docs/service-api.yaml", r.URL.Path)})
	})
}

// apiError is a refusal or failure on its way to the caller: what the
// caller reads (code, field, message) apart from what only the log gets.
type apiError struct {
	code, field, msg string
	log              error
}

func (e *apiError) Error() string { return e.msg }

func invalidField(field, format string, args ...any) *apiError {
	return &apiError{code: api.CodeInvalid, field: field, msg: fmt.Sprintf(format, args...)}
}

// toAPI turns any error into what the caller reads: an *apiError as it
// is, an access error by its class, anything else as internal, whose
// words stay in the log.
func toAPI(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	switch c := access.ClassOf(err); c {
	case access.Internal:
		return &apiError{code: api.CodeInternal, msg: "the service failed on this call; it has been logged", log: err}
	default:
		return &apiError{code: string(c), field: access.FieldOf(err), msg: err.Error()}
	}
}

// fail writes err as the API's error body.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	s.failWith(w, r, err, nil)
}

// failWith writes err, and req when a call changed hosts before it failed:
// the caller must know what now stands.
func (s *Server) failWith(w http.ResponseWriter, r *http.Request, err error, req *api.Request) {
	ae := toAPI(err)
	if ae.log != nil {
		s.cfg.Log.Error("call failed", "method", r.Method, "path", r.URL.Path, "caller", callerName(r), "error", ae.log.Error())
	}
	body := struct {
		Error   api.Error    `json:"error"`
		Request *api.Request `json:"request,omitempty"`
	}{Error: api.Error{Code: ae.code, Field: ae.field, Message: ae.msg}, Request: req}
	s.write(w, api.StatusOf(ae.code), body)
}

// write sends v as JSON with status.
func (s *Server) write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	enc.Encode(v)
}

// read decodes the JSON body of r into v: one object, known fields only,
// within the edge's size limit.
func read(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &apiError{code: api.CodeInvalid, msg: fmt.Sprintf("the body is %.60q, not application/json", ct)}
		}
	}
	var raw bytes.Buffer
	dec := json.NewDecoder(io.TeeReader(r.Body, &raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooLarge):
			return &apiError{code: api.CodeTooLarge, msg: fmt.Sprintf("the body is larger than the %d bytes this service accepts", tooLarge.Limit)}
		case errors.Is(err, io.EOF):
			return &apiError{code: api.CodeInvalid, msg: "the body is empty: send a JSON object"}
		case errors.As(err, &syntax):
			return &apiError{code: api.CodeInvalid, msg: fmt.Sprintf("the body is not JSON (at byte %d)", syntax.Offset)}
		case errors.As(err, &typ):
			return invalidField(typ.Field, "%.60s must be a JSON %s", typ.Field, typ.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			// encoding/json quotes the name with %q.
			field := strings.TrimPrefix(err.Error(), "json: unknown field ")
			if name, err := strconv.Unquote(field); err == nil {
				field = name
			}
			return invalidField(field, "%.60q is not a field of this call: check the API document", field)
		}
		return &apiError{code: api.CodeInvalid, msg: "the body is not a JSON object of this call's shape"}
	}
	// Only white space may follow the value. (Decoder.More would let a
	// stray "}" or "]" through: FuzzRead found "{}}" read as {}.)
	var tooLarge *http.MaxBytesError
	switch _, err := dec.Token(); {
	case errors.Is(err, io.EOF):
		return exactFields(raw.Bytes(), v)
	case errors.As(err, &tooLarge):
		return &apiError{code: api.CodeTooLarge, msg: fmt.Sprintf("the body is larger than the %d bytes this service accepts", tooLarge.Limit)}
	}
	return &apiError{code: api.CodeInvalid, msg: "the body holds more than one JSON value, or something after it"}
}

// exactFields refuses a body whose object names a field of v in another
// case: encoding/json matches names regardless of case, and the API's
// names are exact (FuzzRequestBodies found {"REASON":…} granted).
func exactFields(body []byte, v any) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil
	}
	typ := reflect.TypeOf(v).Elem()
	names := make(map[string]bool, typ.NumField())
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	for k := range top {
		if !names[k] {
			return invalidField(k, "%.60q is not a field of this call (names are exact, in lower case): check the API document", k)
		}
	}
	return nil
}

// limiter is a token bucket per key (a caller, or a client address for
// the sign-in routes): each key earns perMinute calls a minute, and may
// save up a quarter of that for bursts. It is per replica; replicas
// behind a load balancer each allow that much.
type limiter struct {
	mu        sync.Mutex
	perMinute float64
	burst     float64
	now       func() time.Time
	buckets   map[string]*bucket
	swept     time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perMinute int, now func() time.Time) *limiter {
	return &limiter{perMinute: float64(perMinute), burst: max(float64(perMinute)/4, 5), now: now, buckets: map[string]*bucket{}}
}

// allow takes a token from key's bucket, and says how long to wait when
// there is none.
func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Sub(l.swept) > 10*time.Minute {
		for k, b := range l.buckets {
			if now.Sub(b.last) > 10*time.Minute {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	// A clock stepped back (an NTP correction, a test's clock) earns
	// nothing, rather than a debt that would lock the caller out for as
	// long as it stepped.
	b.tokens = min(l.burst, b.tokens+max(now.Sub(b.last), 0).Minutes()*l.perMinute)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.perMinute * float64(time.Minute))
}

// limited refuses a call of key over its rate, telling when to retry.
func (s *Server) limited(w http.ResponseWriter, r *http.Request, l *limiter, key string) bool {
	ok, wait := l.allow(key)
	if ok {
		return false
	}
	secs := int(wait/time.Second) + 1
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	s.fail(w, r, &apiError{code: api.CodeRateLimited, msg: fmt.Sprintf("too many calls: wait %d s and try again", secs)})
	return true
}

// clientAddr is the caller's address, for the sign-in routes' limit.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// callInfo is what the edge learns of a call while it is served: who made
// it, once signedIn knows. A portal page's API calls run in process
// within the page's call, some at once, and share it.
type callInfo struct {
	mu     sync.Mutex
	caller string
}

// signedInAs records who the call is signed in as, and says whether this
// is the call's first signed-in part.
func (c *callInfo) signedInAs(name string) (first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first = c.caller == ""
	c.caller = name
	return first
}

func (c *callInfo) name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.caller
}

type callKey struct{}

// callerName is who the log says called: the principal when the call was
// signed in.
func callerName(r *http.Request) string {
	if c, ok := r.Context().Value(callKey{}).(*callInfo); ok {
		return c.name()
	}
	return ""
}
