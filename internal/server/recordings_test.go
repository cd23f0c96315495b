package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// A recording's asciicast may take longer to send than the server's write
// timeout: its handler extends its own deadline, through the edge's
// wrapper, or the download is cut off part-way.
func TestEdgeLetsAnAnswerExtendItsDeadline(t *testing.T) {
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- http.NewResponseController(&statusRecorder{ResponseWriter: w}).SetWriteDeadline(time.Now().Add(castWriteTime))
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := <-got; err != nil {
		t.Errorf("setting the write deadline through the edge: %v", err)
	}
}
