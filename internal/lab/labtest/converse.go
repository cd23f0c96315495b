package labtest

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
)

// Converse logs in to h as user on an 80x24 terminal, as a person at a
// keyboard would, and step by step waits for the terminal to show step[0]
// and types step[1]; the shell must end after the last step. It returns
// what the terminal showed.
func Converse(t testing.TB, h *sandbox.Host, user string, signer ssh.Signer, steps ...[2]string) string {
	t.Helper()
	key := HostKey(t, h)
	conn, err := ssh.Dial("tcp", h.SSHAddr(), &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(key), HostKeyAlgorithms: []string{key.Type()}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("login to %s as %s: %v", h.Info().InstanceID, user, err)
	}
	defer conn.Close()
	s, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		t.Fatal(err)
	}
	screen := &terminal{}
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
	seen := 0
	for _, step := range steps {
		for !strings.Contains(screen.String()[seen:], step[0]) {
			select {
			case err := <-done:
				t.Fatalf("the shell ended (%v) before showing %q; it showed:\n%s", err, step[0], screen)
			case <-deadline:
				t.Fatalf("the shell did not show %q; it showed:\n%s", step[0], screen)
			case <-time.After(20 * time.Millisecond):
			}
		}
		seen = len(screen.String())
		if _, err := io.WriteString(in, step[1]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-deadline:
		t.Fatalf("the shell did not end after the last step; it showed:\n%s", screen)
	}
	return screen.String()
}

// terminal is what a terminal showed, read while the session writes it.
type terminal struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *terminal) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *terminal) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}
