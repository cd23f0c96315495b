// Package testwait lets a test wait for a state it cannot be told about,
// such as a file on a lab host, an emulator's index or a server's call
// count, by asking for it until it holds. The deadline only turns a hang
// into a failure; nothing is judged by how long it took.
package testwait

import (
	"testing"
	"time"
)

// Within is the deadline tests give a state to come about: long, since a
// loaded CI machine is slow, and a state that never comes fails anyway.
const Within = time.Minute

// every is how often the state is asked for.
const every = 20 * time.Millisecond

// Until asks cond until it holds, and fails the test, naming what it
// waited for, if it has not within Within.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	deadline := time.NewTimer(Within)
	defer deadline.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return
			}
		case <-deadline.C:
			t.Fatalf("waited %s for %s", Within, what)
		}
	}
}
