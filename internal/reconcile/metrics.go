package reconcile

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// Metrics are the reconciler's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	grants      *prometheus.GaugeVec
	revocations *prometheus.CounterVec
	failures    *prometheus.CounterVec
	passes      prometheus.Histogram
	overdue     prometheus.Gauge
	lastPass    prometheus.Gauge
	unreviewed  *prometheus.GaugeVec

	mu       sync.Mutex
	lastDone time.Time // wall clock at the end of the last complete pass
	// wall is the clock /healthz judges staleness by: time.Now, or a
	// test's fake. It is the process's own, not the reconciler's Now,
	// which may be offset.
	wall func() time.Time
}

// NewMetrics registers the metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		grants: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "passport_grants",
			Help: "Open grants in the ledger by state (pending, provisioning, active, revoking), as of the last pass.",
		}, []string{"state"}),
		revocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passport_reconcile_revocations_total",
			Help: "Grants this reconciler closed, and stray users it removed, by reason.",
		}, []string{"reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "passport_reconcile_failures_total",
			Help: "Steps of a pass that failed, by kind (revoke, ledger, lease, list, sweep, policy).",
		}, []string{"kind"}),
		passes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "passport_reconcile_pass_duration_seconds",
			Help:    "How long one reconcile pass took.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		overdue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "passport_oldest_overdue_grant_seconds",
			Help: "How long the most overdue grant has been due after the last pass; 0 when none is.",
		}),
		unreviewed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "passport_unreviewed_break_glass_grants",
			Help: "Break-glass grants no one has reviewed yet, as of the last pass: overdue=\"true\" for those past their review deadline.",
		}, []string{"overdue"}),
		lastPass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "passport_reconcile_last_pass_timestamp_seconds",
			Help: "When the last pass that could read the ledger ended (Unix time); its failures are in passport_reconcile_failures_total.",
		}),
	}
	reg.MustRegister(m.grants, m.revocations, m.failures, m.passes, m.overdue, m.lastPass, m.unreviewed)
	m.wall = time.Now
	return m
}

func (m *Metrics) failure(kind string) {
	if m != nil {
		m.failures.WithLabelValues(kind).Inc()
	}
}

func (m *Metrics) revoked(reason string) {
	if m != nil {
		m.revocations.WithLabelValues(reason).Inc()
	}
}

func (m *Metrics) strays(n int) {
	if m != nil && n > 0 {
		m.revocations.WithLabelValues("stray").Add(float64(n))
	}
}

func (m *Metrics) completed(now time.Time) {
	if m == nil {
		return
	}
	m.lastPass.Set(float64(now.Unix()))
	m.mu.Lock()
	m.lastDone = m.wall()
	m.mu.Unlock()
}

// observe records a pass's duration, the open grants by state, and how
// long the most overdue of the grants still due after the pass has waited.
func (m *Metrics) observe(ctx context.Context, l *ledger.Ledger, now time.Time, took time.Duration, left []ledger.Grant) {
	m.passes.Observe(took.Seconds())
	for _, s := range ledger.OpenStates() {
		if gs, err := l.List(ctx, s); err == nil {
			m.grants.WithLabelValues(string(s)).Set(float64(len(gs)))
		}
	}
	if un, err := l.Unreviewed(ctx); err == nil {
		late := 0
		for _, g := range un {
			if !now.Before(g.Review.Due) {
				late++
			}
		}
		m.unreviewed.WithLabelValues("true").Set(float64(late))
		m.unreviewed.WithLabelValues("false").Set(float64(len(un) - late))
	}
	var oldest time.Duration
	for _, g := range left {
		oldest = max(oldest, now.Sub(dueSince(g)))
	}
	m.overdue.Set(oldest.Seconds())
}

// Handler serves /metrics from gatherer and /healthz: 200 while a pass has
// run to its end within stale (or the process started less than stale
// ago), 503 after, so a supervisor restarts a reconciler that is stuck or
// cannot read its ledger.
func (m *Metrics) Handler(gatherer prometheus.Gatherer, stale time.Duration) http.Handler {
	started := m.wall()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		last := m.lastDone
		m.mu.Unlock()
		ref := last
		if ref.IsZero() {
			ref = started
		}
		healthy := m.wall().Sub(ref) < stale
		w.Header().Set("Content-Type", "application/json")
		if !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		var lastOK *time.Time
		if !last.IsZero() {
			lastOK = &last
		}
		json.NewEncoder(w).Encode(struct {
			Healthy  bool       `json:"healthy"`
			LastPass *time.Time `json:"last_pass"`
		}{healthy, lastOK})
	})
	return mux
}
