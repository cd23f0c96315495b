package notify

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// metrics are a Deliverer's, per sink. The counters are this replica's;
// the gauges read the shared outbox, so every replica reports the same
// backlog.
type metrics struct {
	delivered, retried, dead *prometheus.CounterVec
	pending, oldest          *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "passport_notifications_delivered_total",
			Help: "Notifications this replica delivered, by sink."}, []string{"sink"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "passport_notifications_retried_total",
			Help: "Failed delivery attempts this replica will retry, by sink."}, []string{"sink"}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "passport_notifications_dead_lettered_total",
			Help: "Notifications given up on after retrying for the dead-letter time, by sink."}, []string{"sink"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "passport_notifications_backlog",
			Help: "Notifications in the outbox not yet delivered, by sink."}, []string{"sink"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "passport_notifications_oldest_undelivered_seconds",
			Help: "Age of the oldest notification not yet delivered, by sink; 0 when none waits."}, []string{"sink"}),
	}
	if reg != nil {
		reg.MustRegister(m.delivered, m.retried, m.dead, m.pending, m.oldest)
	}
	return m
}

// init makes a sink's series exist from the start, at zero, so a rate or
// an alert on them has something to read before the first event.
func (m *metrics) init(sink string) {
	m.delivered.WithLabelValues(sink)
	m.retried.WithLabelValues(sink)
	m.dead.WithLabelValues(sink)
	m.pending.WithLabelValues(sink)
	m.oldest.WithLabelValues(sink)
}

// backlog counts, per sink, the outbox's notices it has not had.
func (m *metrics) backlog(sinks []*sink, box []ledger.Grant, now time.Time) {
	for _, s := range sinks {
		n, oldest := 0, time.Duration(0)
		for _, g := range box {
			for _, nt := range unsent(g, progressOf(g.Delivery, s.cfg.Name)) {
				if !s.wants(string(nt.Kind)) {
					continue
				}
				n++
				oldest = max(oldest, now.Sub(nt.At))
			}
		}
		m.pending.WithLabelValues(s.cfg.Name).Set(float64(n))
		m.oldest.WithLabelValues(s.cfg.Name).Set(oldest.Seconds())
	}
}
