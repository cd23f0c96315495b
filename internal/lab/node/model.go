package node

import (
	"context"
	"sync"
	"time"
)

// Model is a node with no operating system behind it: it accepts every
// script and answers after a configurable delay. A thousand of them fit on
// one machine, which is what scale tests and benchmarks need; they prove
// nothing about what a script does on a real host.
type Model struct {
	info Info

	mu       sync.Mutex
	online   bool
	delay    time.Duration
	exitCode int
	stdout   []byte
	stderr   []byte
}

// NewModel returns an online model node that answers every script at once
// with exit code 0 and empty output.
func NewModel(info Info) *Model {
	if info.PlatformType == "" {
		info.PlatformType = Linux
	}
	return &Model{info: info, online: true}
}

// Info implements Node.
func (m *Model) Info() Info { return m.info }

// Online implements Node.
func (m *Model) Online() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.online
}

// SetOnline connects or disconnects the model's agent.
func (m *Model) SetOnline(online bool) {
	m.mu.Lock()
	m.online = online
	m.mu.Unlock()
}

// SetDelay sets how long every script takes.
func (m *Model) SetDelay(d time.Duration) {
	m.mu.Lock()
	m.delay = d
	m.mu.Unlock()
}

// SetAnswer sets the exit code and output every later script reports; a
// non-zero exit code makes the model a failing host.
func (m *Model) SetAnswer(exitCode int, stdout, stderr string) {
	m.mu.Lock()
	m.exitCode, m.stdout, m.stderr = exitCode, []byte(stdout), []byte(stderr)
	m.mu.Unlock()
}

// Run implements Node.
func (m *Model) Run(ctx context.Context, s Script) (Result, error) {
	m.mu.Lock()
	online, delay := m.online, m.delay
	res := Result{ExitCode: m.exitCode, Stdout: m.stdout, Stderr: m.stderr}
	m.mu.Unlock()
	if !online {
		return Result{}, ErrOffline
	}
	if s.Timeout > 0 && delay > s.Timeout {
		delay = s.Timeout
		res = Result{ExitCode: -1, TimedOut: true}
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case <-t.C:
	}
	if !m.Online() {
		return Result{}, ErrOffline
	}
	return res, nil
}
