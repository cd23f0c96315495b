package benchpair

import (
	"testing"
	"time"
)

func TestMedianOfRatios(t *testing.T) {
	for _, c := range []struct {
		name     string
		measured []time.Duration // against a baseline of 100 each
		want     float64
	}{
		{"none", nil, 0},
		{"odd", []time.Duration{300, 110, 120}, 1.2},
		// Two iterations: the mean of both, not the worse one.
		{"even", []time.Duration{180, 120}, 1.5},
		{"even, unsorted", []time.Duration{400, 100, 130, 110}, 1.2},
	} {
		var p Pairs
		for i, m := range c.measured {
			p.Add(i, func() time.Duration { return 100 }, func() time.Duration { return m })
		}
		if got := p.Median(); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("%s: median %v, want %v", c.name, got, c.want)
		}
	}
}

func TestAddTakesTurnsGoingFirst(t *testing.T) {
	var p Pairs
	var order []string
	for i := range 4 {
		p.Add(i, func() time.Duration { order = append(order, "base"); return 1 },
			func() time.Duration { order = append(order, "measured"); return 1 })
	}
	want := []string{"base", "measured", "measured", "base", "base", "measured", "measured", "base"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}
