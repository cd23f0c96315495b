package ssmsession

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
	"time"
)

// TestFullDuplexBulk pushes bulk data both ways at once through an echo
// port, so both ends' websocket send buffers fill: acknowledgements must
// still get out, or each side waits for the other forever.
func TestFullDuplexBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB each way; skipped with -short")
	}
	port := listenTCP(t, echo)
	ta := newTestAgent(t, portForwarding(port), loopDial(port))
	s := dial(t, ta, nil)
	const size = 64 << 20
	data := make([]byte, size)
	rand.Read(data)
	done := make(chan error, 4)
	for range 2 {
		go func() {
			c, err := s.Open()
			if err != nil {
				done <- err
				return
			}
			defer c.Close()
			go c.Write(data)
			got := make([]byte, size)
			c.SetReadDeadline(time.Now().Add(120 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				done <- err
				return
			}
			if !bytes.Equal(got, data) {
				t.Error("echo differs")
			}
			done <- nil
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
