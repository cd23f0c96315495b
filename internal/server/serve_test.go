package server

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestPlainHTTPOnlyOnLoopback: tokens and certificates travel on the
// service's connections, so anything but loopback needs TLS.
func TestPlainHTTPOnlyOnLoopback(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	h := http.NotFoundHandler()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Skip("cannot listen on every address here:", err)
	}
	err = Serve(context.Background(), ln, h, false, log)
	if err == nil || !strings.Contains(err.Error(), "without TLS") {
		t.Errorf("serving plain HTTP on %s: %v; want a refusal naming TLS", ln.Addr(), err)
	}
	// On loopback the same serves, until its context ends.
	ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, false, log) }()
	resp, err := http.Get("http://" + ln.Addr().String())
	if err != nil {
		t.Fatalf("plain HTTP on loopback: %v", err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("a graceful stop returned %v", err)
	}
}
