package awsidentity

import (
	"context"
	"sync"
	"time"
)

// MemoryOnce is a one-time-use store for a Verifier in a single process
// (a one-replica service, tests): keys live in memory until their time is
// up. Replicas must share a store instead, or a login used at one could
// be used again at another.
type MemoryOnce struct {
	// Now is the clock keys expire by; time.Now when nil.
	Now func() time.Time

	mu     sync.Mutex
	used   map[string]time.Time
	pruned time.Time
}

// Use records key until until, and returns ErrUsed if it is already
// recorded. It has Verifier.Once's signature.
func (m *MemoryOnce) Use(_ context.Context, key string, until time.Time) error {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.used == nil {
		m.used = map[string]time.Time{}
	}
	// A sweep a minute keeps Use cheap however many logins there are.
	if now.Sub(m.pruned) > time.Minute {
		for k, t := range m.used {
			if now.After(t) {
				delete(m.used, k)
			}
		}
		m.pruned = now
	}
	if t, ok := m.used[key]; ok && !now.After(t) {
		return ErrUsed
	}
	m.used[key] = until
	return nil
}
