package server

import (
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
)

func TestALimitKeepsItsRateWhenTheClockStepsBack(t *testing.T) {
	clk := &clock.Offset{}
	l := newLimiter(60, clk.Now)
	for i := 0; i < 15; i++ {
		if ok, _ := l.allow("alice"); !ok {
			t.Fatalf("call %d of a burst of 15 refused", i+1)
		}
	}
	if ok, _ := l.allow("alice"); ok {
		t.Fatal("a call past the burst allowed")
	}
	clk.Advance(time.Minute)
	if ok, _ := l.allow("alice"); !ok {
		t.Fatal("a call a minute later refused")
	}
	clk.Advance(-3 * time.Hour)
	clk.Advance(2 * time.Second)
	if ok, wait := l.allow("alice"); !ok {
		t.Fatalf("after the clock stepped back three hours, alice must wait %s; want her rate to go on", wait)
	}
}
