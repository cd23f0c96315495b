// Package awsjson serves AWS services over the JSON 1.1 protocol (the one
// SSM and KMS speak), with SigV4 checking, so that the real SDK clients and
// the AWS CLI talk to the lab as they talk to AWS.
//
// A request is a POST of a JSON object with Content-Type
// application/x-amz-json-1.1 and X-Amz-Target "<TargetPrefix>.<Operation>".
// Answers carry x-amzn-RequestId; errors carry X-Amzn-ErrorType and a body
// {"__type":"<namespace>#<Code>","message":"..."}, which is what the SDK's
// deserializer turns into its typed errors.
package awsjson

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/iam"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sigv4"
)

// MaxBodyBytes bounds a request body. No operation the lab serves takes
// anywhere near this much; the bound keeps a hostile client from making
// the lab buffer without limit (the whole body must be read to check its
// signature).
const MaxBodyBytes = 1 << 20

// Operation handles one API action. input is the request body, already
// checked to be a JSON object; output is marshalled with encoding/json
// (nil answers {}). Returning an *Error answers that error; any other error
// answers InternalFailure.
type Operation func(ctx context.Context, input json.RawMessage) (output any, err error)

// Service is one AWS service's JSON API.
type Service struct {
	TargetPrefix string               // "AmazonSSM" for X-Amz-Target: AmazonSSM.SendCommand
	SigningName  string               // "ssm": must match the SigV4 credential scope
	Namespace    string               // "com.amazonaws.ssm": the __type prefix of errors
	Operations   map[string]Operation // "SendCommand" -> handler
	// Resources names what a call of an operation acts on, as IAM sees it
	// (the ARNs a policy's Resource must match, with their tags), for the
	// callers' policies; nil, or no resources, means "*". It must take
	// any input, including input the operation will refuse.
	Resources func(operation string, input json.RawMessage) []iam.Resource
}

// Config configures a Server.
type Config struct {
	Region string
	// Credentials maps access key ids to secret access keys.
	Credentials map[string]string
	// Now is the clock signatures are checked against; time.Now when nil.
	Now func() time.Time
}

// Server dispatches JSON 1.1 requests to registered services, and other
// requests to handlers added with Handle.
type Server struct {
	region string
	now    func() time.Time
	mux    *http.ServeMux

	mu            sync.Mutex
	credentials   map[string]sigv4.Credential
	services      map[string]Service // by TargetPrefix
	latency       time.Duration
	throttleEvery int
	seen          int // calls counted towards throttling
	calls         map[string]int
	denied        map[string]map[string]bool // access key -> lower-case IAM action
	principals    map[string]Principal       // by access key
}

// NewServer returns a server with no services.
func NewServer(cfg Config) *Server {
	s := &Server{
		region:      cfg.Region,
		now:         cfg.Now,
		mux:         http.NewServeMux(),
		credentials: make(map[string]sigv4.Credential, len(cfg.Credentials)),
		services:    make(map[string]Service),
		calls:       make(map[string]int),
		denied:      make(map[string]map[string]bool),
		principals:  make(map[string]Principal),
	}
	if s.now == nil {
		s.now = time.Now
	}
	for id, secret := range cfg.Credentials {
		s.credentials[id] = sigv4.Credential{Secret: secret}
	}
	return s
}

// Register adds a service's operations. Registering the same TargetPrefix
// twice replaces the first.
func (s *Server) Register(svc Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services[svc.TargetPrefix] = svc
}

// Handle serves requests that are not JSON 1.1 calls (no X-Amz-Target, no
// x-amz-json content type) with h, using http.ServeMux patterns. Such
// handlers are not signature-checked unless they call Verify, since some
// (STS AssumeRoleWithSAML, the data-channel websocket) are unsigned on AWS.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// AddCredentials accepts another access key, such as temporary
// credentials issued by the lab's STS (with their session token and
// expiry), or replaces what is known about one.
func (s *Server) AddCredentials(accessKeyID string, c sigv4.Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.credentials[accessKeyID] = c
}

// SetLatency delays every answer by d, errors included.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// SetThrottleEvery makes every nth JSON call answer ThrottlingException;
// 0 turns throttling off and restarts the count.
func (s *Server) SetThrottleEvery(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttleEvery, s.seen = max(n, 0), 0
}

// Calls returns how many authenticated calls each target received, such as
// "AmazonSSM.SendCommand", throttled calls included.
func (s *Server) Calls() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// ResetCalls clears the counts Calls reports.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.calls)
}

type callerKey struct{}

// CallerAccessKey returns the access key id that signed the request being
// served, or "" outside a signed request.
func CallerAccessKey(ctx context.Context) string {
	id, _ := ctx.Value(callerKey{}).(string)
	return id
}

// Verify checks the SigV4 signature of a request for a handler added with
// Handle, for signingName's credential scope. It reads the body (bounded by
// MaxBodyBytes) and returns a copy of r whose body can be read again and
// whose context carries the caller for CallerAccessKey. Refusals are *Error
// with AWS's code, for the handler to render in its own protocol.
func (s *Server) Verify(r *http.Request, signingName string) (*http.Request, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	r2, err := s.verify(r, body, signingName, false)
	if err != nil {
		return nil, err
	}
	r2.Body = io.NopCloser(bytes.NewReader(body))
	return r2, nil
}

// VerifyS3 checks the SigV4 signature of an S3 request over body, which
// the handler has read (S3's objects are larger than MaxBodyBytes), with
// S3's signing rules, and returns r with the caller in its context.
func (s *Server) VerifyS3(r *http.Request, body []byte) (*http.Request, error) {
	return s.verify(r, body, "s3", true)
}

func (s *Server) verify(r *http.Request, body []byte, signingName string, s3 bool) (*http.Request, error) {
	v := sigv4.Verifier{
		S3:      s3,
		Region:  s.region,
		Service: signingName,
		Credential: func(id string) (sigv4.Credential, bool) {
			s.mu.Lock()
			defer s.mu.Unlock()
			c, ok := s.credentials[id]
			return c, ok
		},
		Now: s.now,
	}
	caller, err := v.Verify(r, body)
	if err != nil {
		var e *sigv4.Error
		if errors.As(err, &e) {
			fe := frontEndError(http.StatusBadRequest, e.Code, "%s", e.Message)
			fe.cause = e
			return nil, fe
		}
		return nil, err
	}
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, caller)), nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Amzn-Requestid", requestID())
	if r.Header.Get("X-Amz-Target") == "" && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-amz-json-") {
		if h, pattern := s.mux.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
	}
	svc, out, err := s.call(r)
	s.answer(w, r, svc, out, err)
}

// call runs one JSON request and returns the service it addressed (zero if
// none) and the operation's output or error.
func (s *Server) call(r *http.Request) (Service, any, error) {
	if r.Method != http.MethodPost {
		return Service{}, nil, frontEndError(http.StatusBadRequest, "UnknownOperationException",
			"AWS JSON services accept only POST, not %s.", clip(r.Method))
	}
	prefix, name, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	s.mu.Lock()
	svc, ok := s.services[prefix]
	s.mu.Unlock()
	if !ok {
		return Service{}, nil, frontEndError(http.StatusBadRequest, "UnknownOperationException",
			"The X-Amz-Target header %q names no service this endpoint serves.", clip(r.Header.Get("X-Amz-Target")))
	}

	body, err := readBody(r)
	if err != nil {
		return svc, nil, err
	}
	r, err = s.verify(r, body, svc.SigningName, false)
	if err != nil {
		return svc, nil, err
	}

	op, ok := svc.Operations[name]
	if !ok {
		return svc, nil, frontEndError(http.StatusBadRequest, "UnknownOperationException",
			"%s has no operation %q.", svc.TargetPrefix, clip(name))
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-amz-json-1.") {
		return svc, nil, frontEndError(http.StatusBadRequest, "SerializationException",
			"Content-Type must be application/x-amz-json-1.1, not %q.", clip(ct))
	}
	var resources []iam.Resource
	if svc.Resources != nil {
		resources = svc.Resources(name, body)
	}
	if err := s.authorize(CallerAccessKey(r.Context()), svc.SigningName+":"+name, resources); err != nil {
		s.count(svc.TargetPrefix + "." + name)
		return svc, nil, err
	}
	if s.count(svc.TargetPrefix + "." + name) {
		return svc, nil, &Error{Code: "ThrottlingException", Message: "Rate exceeded", HTTPStatus: http.StatusBadRequest}
	}

	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := checkObject(body); err != nil {
		return svc, nil, err
	}
	out, err := runOperation(r.Context(), op, body)
	return svc, out, err
}

// count records a call and reports whether it is to be throttled.
func (s *Server) count(target string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[target]++
	if s.throttleEvery == 0 {
		return false
	}
	s.seen++
	return s.seen%s.throttleEvery == 0
}

// runOperation calls op, turning a panic into InternalFailure so one bad
// handler cannot take the lab down.
func runOperation(ctx context.Context, op Operation, body []byte) (out any, err error) {
	defer func() {
		if p := recover(); p != nil {
			log.Printf("awsjson: operation panicked: %v", p)
			out, err = nil, errInternal
		}
	}()
	return op(ctx, body)
}

var errInternal = &Error{Code: "InternalFailure", Message: "The request processing has failed because of an unknown error, exception or failure.", HTTPStatus: http.StatusInternalServerError}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, svc Service, out any, err error) {
	s.mu.Lock()
	latency := s.latency
	s.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}

	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if err == nil {
		if out == nil {
			out = struct{}{}
		}
		body, merr := json.Marshal(out)
		if merr == nil {
			w.Write(body)
			return
		}
		log.Printf("awsjson: %s: encoding output: %v", r.Header.Get("X-Amz-Target"), merr)
		err = errInternal
	}

	var e *Error
	if !errors.As(err, &e) {
		log.Printf("awsjson: %s: %v", r.Header.Get("X-Amz-Target"), err)
		e = errInternal
	}
	namespace := e.namespace
	if namespace == "" {
		namespace = svc.Namespace
	}
	if namespace == "" {
		namespace = coralNamespace
	}
	status := e.HTTPStatus
	if status == 0 {
		status = http.StatusBadRequest
	}
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{namespace + "#" + e.Code, e.Message})
	w.Header().Set("X-Amzn-Errortype", e.Code+":http://internal.amazon.com/coral/"+namespace+"/")
	w.WriteHeader(status)
	w.Write(body)
}

func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, frontEndError(http.StatusBadRequest, "SerializationException", "Reading the request body failed: %v.", err)
	}
	if len(body) > MaxBodyBytes {
		return nil, frontEndError(http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException",
			"The request body is larger than %d bytes.", MaxBodyBytes)
	}
	return body, nil
}

// checkObject refuses bodies that are not exactly one JSON object, before
// any operation sees them.
func checkObject(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var obj map[string]json.RawMessage
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return frontEndError(http.StatusBadRequest, "SerializationException", "The request body must be a JSON object.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return frontEndError(http.StatusBadRequest, "SerializationException", "The request body has data after its JSON object.")
	}
	return nil
}

func requestID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:])
}

// clip bounds client-chosen text quoted back in an error message.
func clip(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
