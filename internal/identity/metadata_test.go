package identity

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// metadataServer serves the test IdP's metadata; tls says over HTTPS, and
// the fetches of this test then trust its certificate.
func metadataServer(t *testing.T, tls bool, h http.Handler) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(h)
		metadataRoundTripper = srv.Client().Transport
		t.Cleanup(func() { metadataRoundTripper = nil })
	} else {
		srv = httptest.NewServer(h)
	}
	t.Cleanup(srv.Close)
	return srv
}

func serveMetadata(t *testing.T) http.Handler {
	body, err := xml.Marshal(newTestIdP(t, "idp").metadata())
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })
}

func TestLoadMetadataTransports(t *testing.T) {
	ctx := context.Background()
	t.Run("https", func(t *testing.T) {
		srv := metadataServer(t, true, serveMetadata(t))
		if md, err := LoadMetadata(ctx, srv.URL+"/metadata"); err != nil || md.EntityID != testIdPEntity {
			t.Fatalf("LoadMetadata over https: %v", err)
		}
	})
	t.Run("plain http from loopback", func(t *testing.T) {
		srv := metadataServer(t, false, serveMetadata(t))
		if _, err := LoadMetadata(ctx, srv.URL+"/metadata"); err != nil {
			t.Fatalf("LoadMetadata over loopback http: %v", err)
		}
		local := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
		if _, err := LoadMetadata(ctx, local+"/metadata"); err != nil {
			t.Fatalf("LoadMetadata over http from localhost: %v", err)
		}
	})
	t.Run("plain http from another machine", func(t *testing.T) {
		for _, u := range []string{"http://192.0.2.10/metadata", "http://idp.example.test/metadata", "http://[2001:db8::1]/metadata"} {
			_, err := LoadMetadata(ctx, u)
			if err == nil || !strings.Contains(err.Error(), "plain http from another machine") {
				t.Errorf("LoadMetadata(%s): %v, want a refusal of plain http", u, err)
			}
		}
	})
	t.Run("redirect from https to http", func(t *testing.T) {
		plain := metadataServer(t, false, serveMetadata(t))
		srv := metadataServer(t, true, http.RedirectHandler(plain.URL+"/metadata", http.StatusFound))
		_, err := LoadMetadata(ctx, srv.URL+"/metadata")
		if err == nil || !strings.Contains(err.Error(), "redirect from https to http") {
			t.Fatalf("LoadMetadata through a redirect to http: %v, want a refusal", err)
		}
	})
	t.Run("redirect within https", func(t *testing.T) {
		var srv *httptest.Server
		mux := http.NewServeMux()
		mux.Handle("/old", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, srv.URL+"/metadata", http.StatusMovedPermanently)
		}))
		mux.Handle("/metadata", serveMetadata(t))
		srv = metadataServer(t, true, mux)
		if _, err := LoadMetadata(ctx, srv.URL+"/old"); err != nil {
			t.Fatalf("LoadMetadata through an https redirect: %v", err)
		}
	})
	t.Run("a server that never answers", func(t *testing.T) {
		release := make(chan struct{})
		srv := metadataServer(t, true, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		defer close(release)
		metadataTimeout = 200 * time.Millisecond
		t.Cleanup(func() { metadataTimeout = MetadataTimeout })
		_, err := LoadMetadata(ctx, srv.URL+"/metadata")
		if err == nil || !strings.Contains(err.Error(), "no answer within") {
			t.Fatalf("LoadMetadata from a silent server: %v, want it to give up", err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		srv := metadataServer(t, true, http.NotFoundHandler())
		if _, err := LoadMetadata(ctx, srv.URL+"/metadata"); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("LoadMetadata of a missing document: %v", err)
		}
	})
}
