package reconcile

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
)

// wantMetric gathers reg and wants the sample of name with exactly labels
// to be want.
func wantMetric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	if got := metric(t, reg, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

// metric gathers reg and returns the sample of name with exactly labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := make(map[string]string)
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if !maps.Equal(got, labels) && !(len(got) == 0 && labels == nil) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("%s%v is not exported", name, labels)
	return 0
}

func TestHealthzFollowsCompletedPasses(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	wall := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	m.wall = wall.Now
	status := func(h http.Handler) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		return rec.Code
	}
	h := m.Handler(reg, time.Minute)
	if got := status(h); got != http.StatusOK {
		t.Errorf("/healthz just after start: %d, want 200", got)
	}
	wall.Advance(time.Minute)
	if got := status(h); got != http.StatusServiceUnavailable {
		t.Errorf("/healthz with no pass since start, a minute on: %d, want 503", got)
	}
	m.completed(wall.Now())
	if got := status(h); got != http.StatusOK {
		t.Errorf("/healthz right after a pass: %d, want 200", got)
	}
	wall.Advance(time.Minute - time.Second)
	if got := status(h); got != http.StatusOK {
		t.Errorf("/healthz a second before the limit: %d, want 200", got)
	}
	wall.Advance(time.Second)
	if got := status(h); got != http.StatusServiceUnavailable {
		t.Errorf("/healthz once the last pass is a minute old: %d, want 503", got)
	}
}
