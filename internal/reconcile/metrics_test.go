package reconcile

import (
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// wantMetric gathers reg and wants the sample of name with exactly labels
// to be want.
func wantMetric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, want float64) {
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
			var v float64
			switch {
			case m.GetCounter() != nil:
				v = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				v = m.GetGauge().GetValue()
			}
			if v != want {
				t.Errorf("%s%v = %v, want %v", name, labels, v, want)
			}
			return
		}
	}
	t.Errorf("%s%v is not exported", name, labels)
}
