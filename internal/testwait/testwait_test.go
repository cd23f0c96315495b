package testwait

import (
	"sync/atomic"
	"testing"
)

func TestUntilReturnsOnceTheStateHolds(t *testing.T) {
	var asked atomic.Int32
	Until(t, "the third ask", func() bool { return asked.Add(1) == 3 })
	if n := asked.Load(); n != 3 {
		t.Errorf("asked %d times, want 3: it returned before the state held, or asked again after", n)
	}
}
