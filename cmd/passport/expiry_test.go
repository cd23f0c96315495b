package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
)

// The connect commands warn when less than 10 minutes of the window are
// left: at once, or when it comes to that while the connection lasts,
// and not for a connection that ends before.
func TestExpiryWarnings(t *testing.T) {
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		left time.Duration
		wait time.Duration // how long the connection lasts
		want string
	}{
		{"little left at the start", 7 * time.Minute, 0, "passport: access request ar-0123456789abcdef ends in 7m (at 2026-12-06T09:07:00Z): finish, or extend it with passport request extend ar-0123456789abcdef <duration>\n"},
		{"a long connection reaches the last 10 minutes", 2 * time.Hour, 2*time.Hour - 10*time.Minute, "passport: access request ar-0123456789abcdef ends in 10m (at 2026-12-06T11:00:00Z)"},
		{"a connection that ends before", 2 * time.Hour, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewFake(start)
			fired := make(chan time.Time, 1)
			var armed time.Duration
			c := clockFuncs{now: clk.Now, after: func(d time.Duration) <-chan time.Time { armed = d; return fired }}
			out := syncWriter{wrote: make(chan struct{}, 1)}
			ctx, cancel := context.WithCancel(context.Background())
			req := &connect.Request{ID: "ar-0123456789abcdef", ExpiresAt: start.Add(tc.left)}
			warnExpiry(ctx, &out, req, c)
			if tc.wait > 0 {
				if armed != tc.wait {
					t.Fatalf("the warning is set %s ahead, want %s", armed, tc.wait)
				}
				clk.Advance(tc.wait)
				fired <- clk.Now()
				select {
				case <-out.wrote:
				case <-time.After(time.Minute):
					t.Fatal("nothing was written a minute after the warning's time came")
				}
			}
			cancel()
			if got := out.String(); tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("warned %q, want %q", got, tc.want)
			}
		})
	}
	warnExpiry(context.Background(), &syncWriter{}, nil, realClock) // no request held: nothing to say
}

func TestTimeLeft(t *testing.T) {
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		state   string
		expires time.Time
		want    string
	}{
		{"active", now.Add(90 * time.Minute), "1h30m"},
		{"active", now.Add(2 * time.Hour), "2h"},
		{"live", now.Add(9*time.Minute + 20*time.Second), "9m"},
		{"active", now.Add(40 * time.Second), "40s"},
		{"active", now.Add(59*time.Minute + 50*time.Second), "1h"},
		{"active", now.Add(-time.Minute), "ended"},
		{"pending", now.Add(time.Hour), "waits"},
		{"revoked", now.Add(time.Hour), "-"},
	} {
		if got := timeLeft(tc.state, tc.expires, now); got != tc.want {
			t.Errorf("%s until %s: %q, want %q", tc.state, tc.expires.Sub(now), got, tc.want)
		}
	}
}

// syncWriter collects what a goroutine writes while the test reads, and
// says on wrote (when it has one) that something was.
type syncWriter struct {
	output
	wrote chan struct{}
}

func (w *syncWriter) Write(p []byte) (int, error) {
	n, err := w.output.Write(p)
	if w.wrote != nil {
		select {
		case w.wrote <- struct{}{}:
		default:
		}
	}
	return n, err
}
