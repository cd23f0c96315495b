package portal

import (
	"net/http"
	"net/http/httptest"
)

// inProcess carries the portal's API calls to the service's own /v1
// handler in this process: the same routes, checks and answers a CLI
// gets over HTTPS, without a network hop. The call's context goes with
// it, so the edge's log line for the page names the caller.
type inProcess struct{ api http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	r.RequestURI = r.URL.RequestURI()
	w := httptest.NewRecorder()
	t.api.ServeHTTP(w, r)
	return w.Result(), nil
}
