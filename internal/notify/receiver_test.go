package notify

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// receiver is a webhook receiver on a real loopback HTTP server: it
// verifies each request as the guide tells receivers to, fails the first
// failFirst attempts (503), and keeps what it accepted.
type receiver struct {
	t         testing.TB
	srv       *httptest.Server
	secret    []byte
	now       func() time.Time
	mu        sync.Mutex
	failFirst int
	failKind  string // fail every event of this type
	attempts  int
	got       []received
}

type received struct {
	header http.Header
	body   []byte
	event  Event
}

func newReceiver(t testing.TB, secret []byte, now func() time.Time) *receiver {
	r := &receiver{t: t, secret: secret, now: now}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		w.WriteHeader(400)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	var e Event
	if err := json.Unmarshal(body, &e); err != nil {
		r.t.Errorf("receiver: a body that is not JSON: %v", err)
	}
	if r.attempts <= r.failFirst || (r.failKind != "" && e.Type == r.failKind) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "try later")
		return
	}
	if r.secret != nil {
		if err := Verify(r.secret, req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), body, r.now(), 5*time.Minute); err != nil {
			r.t.Errorf("receiver: %s does not verify: %v", e.ID, err)
			w.WriteHeader(401)
			return
		}
		if req.Header.Get(HeaderEventID) != e.ID || req.Header.Get("Idempotency-Key") != e.ID || req.Header.Get(HeaderEventType) != e.Type {
			r.t.Errorf("receiver: headers %v do not name event %s of type %s", req.Header, e.ID, e.Type)
		}
	}
	r.got = append(r.got, received{header: req.Header.Clone(), body: body, event: e})
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, g := range r.got {
		out = append(out, g.event)
	}
	return out
}

func (r *receiver) bodies() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]byte
	for _, g := range r.got {
		out = append(out, g.body)
	}
	return out
}
