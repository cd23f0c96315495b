package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// The API document, docs/service-api.yaml, is held to the service here:
// every call any test of this package makes goes through a recorder
// (rig.start installs it), and every answer must be documented for its
// route and status and validate against the document's schema. TestMain
// then checks that the package's tests, run whole, exercised every route
// and every status the document promises (coverage below).

const apiDocPath = "../../docs/service-api.yaml"

// apiDocURL is the document's address inside the schema compiler.
const apiDocURL = "file:///service-api.json"

// apiDocument is the OpenAPI document, read once per test binary.
type apiDocument struct {
	doc      map[string]any
	compiler *jsonschema.Compiler

	mu      sync.Mutex
	schemas map[string]*jsonschema.Schema
	// seen is every route and status answered in this run, for coverage.
	seen map[string]map[int]bool
}

var (
	apiDocOnce sync.Once
	apiDoc     *apiDocument
	apiDocErr  error
)

// loadAPIDocument reads the document and prepares its schemas.
func loadAPIDocument() (*apiDocument, error) {
	apiDocOnce.Do(func() {
		raw, err := os.ReadFile(filepath.FromSlash(apiDocPath))
		if err != nil {
			apiDocErr = err
			return
		}
		var y any
		if err := yaml.Unmarshal(raw, &y); err != nil {
			apiDocErr = fmt.Errorf("%s is not YAML: %w", apiDocPath, err)
			return
		}
		// Through JSON, so the validator sees exactly what a JSON reader
		// of the document would.
		j, err := json.Marshal(y)
		if err != nil {
			apiDocErr = fmt.Errorf("%s does not convert to JSON: %w", apiDocPath, err)
			return
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			apiDocErr = err
			return
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft2020)
		c.AssertFormat()
		if err := c.AddResource(apiDocURL, doc); err != nil {
			apiDocErr = err
			return
		}
		m, _ := doc.(map[string]any)
		if m == nil || m["openapi"] != "3.1.0" {
			apiDocErr = fmt.Errorf("%s is not an OpenAPI 3.1.0 document", apiDocPath)
			return
		}
		apiDoc = &apiDocument{doc: m, compiler: c, schemas: map[string]*jsonschema.Schema{}, seen: map[string]map[int]bool{}}
	})
	return apiDoc, apiDocErr
}

// pointer escapes a JSON pointer token.
func pointer(tokens ...string) string {
	var b strings.Builder
	for _, t := range tokens {
		b.WriteString("/")
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(t))
	}
	return b.String()
}

// get walks the document by keys, following a $ref at each step.
func (d *apiDocument) get(keys ...string) (map[string]any, bool) {
	cur := d.doc
	for _, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			return nil, false
		}
		cur = d.deref(next)
	}
	return cur, true
}

// deref follows a local $ref ("#/components/...") of the document.
func (d *apiDocument) deref(m map[string]any) map[string]any {
	for range 8 {
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			return m
		}
		cur := d.doc
		for _, t := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			t = strings.NewReplacer("~1", "/", "~0", "~").Replace(t)
			next, ok := cur[t].(map[string]any)
			if !ok {
				return m
			}
			cur = next
		}
		m = cur
	}
	return m
}

// schema compiles the schema at a JSON pointer into the document, once.
func (d *apiDocument) schema(ptr string) (*jsonschema.Schema, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.schemas[ptr]; ok {
		return s, nil
	}
	s, err := d.compiler.Compile(apiDocURL + "#" + ptr)
	if err != nil {
		return nil, err
	}
	d.schemas[ptr] = s
	return s, nil
}

// operations lists every route of the document as a ServeMux pattern
// ("GET /v1/requests/{id}").
func (d *apiDocument) operations() []string {
	paths, _ := d.get("paths")
	var out []string
	for path, item := range paths {
		for method := range item.(map[string]any) {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				out = append(out, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(out)
	return out
}

// splitPattern is a ServeMux pattern's method and path.
func splitPattern(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	return strings.ToLower(method), path
}

// exchange is one call and its answer as the recorder saw them.
type exchange struct {
	route       string // the route's pattern; "" when the call named none
	method, url string
	reqType     string
	reqBody     []byte
	status      int
	header      http.Header
	body        []byte
}

// redacted is body with every service token cut short, for messages.
func redacted(body []byte) string {
	return reToken.ReplaceAllString(string(body), "ppt_…")
}

var reToken = regexp.MustCompile(`ppt_[A-Za-z0-9_-]{43}`)

func (x exchange) String() string {
	return fmt.Sprintf("%s %s (route %q) answered %d", x.method, x.url, x.route, x.status)
}

// check holds one exchange to the document, returning what is wrong.
func (d *apiDocument) check(x exchange) []string {
	var problems []string
	var resp map[string]any
	var respPtr string
	if strings.HasPrefix(x.route, pagePrefix) {
		return nil
	}
	if x.route == "" {
		// Calls that name no route are the edge's: the default response.
		if x.status != http.StatusNotFound && x.status != http.StatusMethodNotAllowed {
			return []string{fmt.Sprintf("%s: a call that names no route must answer 404 or 405", x)}
		}
		resp, _ = d.get("components", "responses", "NoRoute")
		respPtr = pointer("components", "responses", "NoRoute")
	} else {
		method, path := splitPattern(x.route)
		op, ok := d.get("paths", path, method)
		if !ok {
			return []string{fmt.Sprintf("%s: the route is not in %s", x, apiDocPath)}
		}
		status := strconv.Itoa(x.status)
		r, ok := op["responses"].(map[string]any)[status].(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: status %d is not documented for %s (%.300s)", x, x.status, x.route, redacted(x.body))}
		}
		respPtr = pointer("paths", path, method, "responses", status)
		if ref, ok := r["$ref"].(string); ok {
			respPtr = strings.TrimPrefix(ref, "#")
		}
		resp = d.deref(r)
		// A call that succeeded sent what the document says a call sends.
		if x.status < 300 {
			if schemaPtr, ok := d.requestSchema(path, method, x.reqType); ok && len(x.reqBody) > 0 {
				problems = append(problems, d.validate(x, schemaPtr, x.reqBody, "request body")...)
			}
		}
	}
	if hs, ok := resp["headers"].(map[string]any); ok {
		for name, h := range hs {
			h := d.deref(h.(map[string]any))
			if req, _ := h["required"].(bool); req && x.header.Get(name) == "" {
				problems = append(problems, fmt.Sprintf("%s: no %s header, which the document requires", x, name))
			}
		}
	}
	content, _ := resp["content"].(map[string]any)
	if len(content) == 0 {
		return problems
	}
	mt, _, _ := mime.ParseMediaType(x.header.Get("Content-Type"))
	media, ok := content[mt].(map[string]any)
	if !ok {
		return append(problems, fmt.Sprintf("%s: content type %q is not documented for this status (%.200s)", x, x.header.Get("Content-Type"), redacted(x.body)))
	}
	if mt != "application/json" || media["schema"] == nil {
		return problems
	}
	return append(problems, d.validate(x, respPtr+pointer("content", mt, "schema"), x.body, "response body")...)
}

// requestSchema is the pointer to an operation's request body schema for
// content type ct.
func (d *apiDocument) requestSchema(path, method, ct string) (string, bool) {
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != "application/json" {
		return "", false
	}
	body, ok := d.get("paths", path, method, "requestBody")
	if !ok || body["content"].(map[string]any)[mt] == nil {
		return "", false
	}
	return pointer("paths", path, method, "requestBody", "content", mt, "schema"), true
}

// validate checks body against the schema at ptr.
func (d *apiDocument) validate(x exchange, ptr string, body []byte, what string) []string {
	s, err := d.schema(ptr)
	if err != nil {
		return []string{fmt.Sprintf("%s: the document's schema at %s does not compile: %v", x, ptr, err)}
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return []string{fmt.Sprintf("%s: the %s is not JSON: %v (%.200s)", x, what, err, redacted(body))}
	}
	if err := s.Validate(v); err != nil {
		return []string{fmt.Sprintf("%s: the %s does not match the document (%s):\n%v\nbody: %.600s", x, what, ptr, err, redacted(body))}
	}
	return nil
}

// saw notes a route and status for coverage.
func (d *apiDocument) saw(route string, status int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen[route] == nil {
		d.seen[route] = map[int]bool{}
	}
	d.seen[route][status] = true
}

// documentedStatuses lists the statuses the document gives a route.
func (d *apiDocument) documentedStatuses(route string) []int {
	method, path := splitPattern(route)
	op, _ := d.get("paths", path, method)
	var out []int
	for s := range op["responses"].(map[string]any) {
		if n, err := strconv.Atoi(s); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// recorder wraps a service's handler for one test: every exchange is kept
// and, when the test ends, held to the document.
type recorder struct {
	doc    *apiDocument
	routes *http.ServeMux

	mu    sync.Mutex
	calls []exchange
}

// pagePrefix marks the route of a portal page: HTML the API document does
// not describe, whose answers are held only to carrying no secret.
const pagePrefix = "page "

// recordAPI wraps h, whose routes are patterns and whose portal pages are
// pages, for test t.
func recordAPI(t testing.TB, h http.Handler, patterns []string, pages ...string) http.Handler {
	t.Helper()
	doc, err := loadAPIDocument()
	if err != nil {
		t.Fatalf("the API document: %v", err)
	}
	rec := &recorder{doc: doc, routes: http.NewServeMux()}
	for _, p := range patterns {
		rec.routes.Handle(p, http.NotFoundHandler())
	}
	pageRoutes := http.NewServeMux()
	for _, p := range pages {
		pageRoutes.Handle(p, http.NotFoundHandler())
	}
	t.Cleanup(func() {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, x := range rec.calls {
			for _, p := range doc.check(x) {
				t.Errorf("docs/service-api.yaml: %s", p)
			}
			if leak := leaks(x); leak != "" {
				t.Errorf("%s: %s", x, leak)
			}
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, route := rec.routes.Handler(r)
		if _, page := pageRoutes.Handler(r); route == "" && page != "" {
			route = pagePrefix + page
		}
		var reqBody cappedBuffer
		if r.Body != nil {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.TeeReader(r.Body, &reqBody), r.Body}
		}
		cw := &capture{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(cw, r)
		x := exchange{route: route, method: r.Method, url: r.URL.RequestURI(), reqType: r.Header.Get("Content-Type"), reqBody: reqBody.Bytes(),
			status: cw.status, header: w.Header().Clone(), body: cw.body.Bytes()}
		rec.mu.Lock()
		rec.calls = append(rec.calls, x)
		rec.mu.Unlock()
		if !strings.HasPrefix(route, pagePrefix) {
			doc.saw(route, cw.status)
		}
	})
}

// leaks says what secret an answer carries that it must not: a token
// anywhere but in the answer of a sign-in, a private key anywhere.
func leaks(x exchange) string {
	signIn := x.status == http.StatusOK && (x.route == "POST /v1/login/token" || x.route == "POST /v1/login/aws")
	if reToken.Match(x.body) && !signIn {
		return "a service token in the body"
	}
	if bytes.Contains(x.body, []byte("PRIVATE KEY")) {
		return "a private key in the body"
	}
	for name, values := range x.header {
		if name == "Set-Cookie" && x.route == "POST /saml/acs" {
			continue
		}
		if reToken.MatchString(strings.Join(values, " ")) {
			return "a service token in the " + name + " header"
		}
	}
	return ""
}

// cappedBuffer keeps the first 1 MiB written to it: enough for any body
// the service accepts or sends in these tests.
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := 1<<20 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// capture is a ResponseWriter that keeps the status and body.
type capture struct {
	http.ResponseWriter
	status int
	wrote  bool
	body   cappedBuffer
}

func (c *capture) WriteHeader(code int) {
	if !c.wrote {
		c.status, c.wrote = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *capture) Write(b []byte) (int, error) {
	c.wrote = true
	c.body.Write(b)
	return c.ResponseWriter.Write(b)
}

func (c *capture) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// TestTheAPIDocumentListsEveryRoute: every route the service serves is in
// docs/service-api.yaml, and everything the document lists is served.
func TestTheAPIDocumentListsEveryRoute(t *testing.T) {
	doc, err := loadAPIDocument()
	if err != nil {
		t.Fatal(err)
	}
	r := startRig(t, 0, 0)
	served := r.svc.Server.Routes()
	slices.Sort(served)
	documented := doc.operations()
	for _, p := range served {
		if !slices.Contains(documented, p) {
			t.Errorf("the service serves %s, which %s does not describe", p, apiDocPath)
		}
	}
	for _, p := range documented {
		if !slices.Contains(served, p) {
			t.Errorf("%s describes %s, which the service does not serve", apiDocPath, p)
		}
	}
	// Every operation answers calls that name no route as the edge does,
	// and every signed-in route says how to sign in.
	for _, p := range documented {
		method, path := splitPattern(p)
		op, _ := doc.get("paths", path, method)
		responses := op["responses"].(map[string]any)
		if def, _ := responses["default"].(map[string]any); def["$ref"] != "#/components/responses/NoRoute" {
			t.Errorf("%s: the default response must be the edge's NoRoute", p)
		}
		_, open := op["security"]
		if _, has401 := responses["401"]; !open && !has401 {
			t.Errorf("%s needs a sign-in but documents no 401", p)
		}
		// Every schema compiles, with every $ref in it resolved, those of
		// answers no test provokes too.
		var ptrs []string
		if body, ok := doc.get("paths", path, method, "requestBody"); ok {
			for mt := range body["content"].(map[string]any) {
				ptrs = append(ptrs, pointer("paths", path, method, "requestBody", "content", mt, "schema"))
			}
		}
		for status, raw := range responses {
			respPtr := pointer("paths", path, method, "responses", status)
			if ref, ok := raw.(map[string]any)["$ref"].(string); ok {
				respPtr = strings.TrimPrefix(ref, "#")
			}
			content, _ := doc.deref(raw.(map[string]any))["content"].(map[string]any)
			for mt := range content {
				ptrs = append(ptrs, respPtr+pointer("content", mt, "schema"))
			}
		}
		for _, ptr := range ptrs {
			if _, err := doc.schema(ptr); err != nil {
				t.Errorf("%s: the schema at %s does not compile: %v", p, ptr, err)
			}
		}
	}
}
