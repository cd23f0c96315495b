package clock

import (
	"testing"
	"time"
)

func TestFakeMovesOnlyWhenTold(t *testing.T) {
	start := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	c := NewFake(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", c.Now(), start)
	}
	c.Advance(90 * time.Minute)
	c.Advance(-30 * time.Minute)
	if want := start.Add(time.Hour); !c.Now().Equal(want) {
		t.Errorf("after +90m -30m Now = %v, want %v", c.Now(), want)
	}
}

func TestOffsetRunsWithRealTime(t *testing.T) {
	var c Offset
	c.Advance(time.Hour)
	got := c.Now().Sub(time.Now())
	if got < 59*time.Minute || got > 61*time.Minute {
		t.Errorf("an hour ahead reads %v ahead", got)
	}
}
