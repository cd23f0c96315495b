// Package testterm is what tests use to type on a terminal of an SSH
// login, as a person at a keyboard would: wait for the terminal to show
// something, then type.
package testterm

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// Converse runs a login shell on an 80x24 terminal of a new session of c
// and, step by step, waits for the terminal to show step[0] and types
// step[1]; the shell must end after the last step. It returns what the
// terminal showed. Each step looks for its text after where the previous
// step's was found, so a prompt shown earlier does not count for one that
// is still to come.
func Converse(t testing.TB, c *ssh.Client, steps ...[2]string) string {
	t.Helper()
	user := c.User()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		t.Fatal(err)
	}
	screen := &Screen{}
	s.Stdout = screen
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	// A guard against a hang, not a measure: a step waits for what it
	// looks for.
	deadline := time.After(time.Minute)
	from := 0
	for _, step := range steps {
		for {
			if i := strings.Index(screen.String()[from:], step[0]); i >= 0 {
				from += i + len(step[0])
				break
			}
			select {
			case err := <-done:
				t.Fatalf("the shell of %s ended (%v) before showing %q; it showed:\n%s", user, err, step[0], screen)
			case <-deadline:
				t.Fatalf("the shell of %s did not show %q; it showed:\n%s", user, step[0], screen)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if _, err := io.WriteString(in, step[1]); err != nil {
			t.Fatalf("typing on the terminal of %s: %v", user, err)
		}
	}
	select {
	case <-done:
	case <-deadline:
		t.Fatalf("the shell of %s did not end after the last step; it showed:\n%s", user, screen)
	}
	return screen.String()
}

// Screen is what a terminal showed, read while the session writes it.
type Screen struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Screen) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *Screen) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
