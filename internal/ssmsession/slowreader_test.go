package ssmsession

import (
	"bytes"
	"io"
	"sync"
	"testing"
	"time"
)

// TestSlowReaderHoldsInOrderMessages: messages that arrive in order while
// the reader is behind are held (and so acknowledged), not dropped: a
// dropped one would stall the sender for a retransmission timeout every
// time the reader fell behind, which cut tunnel throughput to a quarter.
func TestSlowReaderHoldsInOrderMessages(t *testing.T) {
	c := newChannel(InputStreamData, OutputStreamData, nil)
	n := queueBytes/chunkSize + 16
	for i := range n {
		c.receive(Message{Type: OutputStreamData, Sequence: int64(i), Payload: bytes.Repeat([]byte{byte(i)}, chunkSize)})
	}
	for i := range n {
		m, err := c.recvTimeout(time.Second)
		if err != nil {
			t.Fatalf("message %d of %d never came: %v", i, n, err)
		}
		if m.Sequence != int64(i) || len(m.Payload) != chunkSize || m.Payload[0] != byte(i) {
			t.Fatalf("message %d: got sequence %d with %d bytes", i, m.Sequence, len(m.Payload))
		}
	}
}

// TestStalledReaderStopsTheSenderWithoutLosingMessages: past what the
// buffer acknowledges at once, messages are still kept, and their
// acknowledgements wait for the reader. The sender's window then stops it;
// nothing is dropped, so nothing waits a retransmission timeout to come
// again, which made throughput swing from 300 MB/s to 5 MB/s.
func TestStalledReaderStopsTheSenderWithoutLosingMessages(t *testing.T) {
	c := newChannel(InputStreamData, OutputStreamData, nil)
	l := &countingLink{closed: make(chan struct{})}
	go c.attach(l)
	t.Cleanup(func() { close(l.closed) })
	for c.current() == nil {
		time.Sleep(time.Millisecond)
	}
	inQueue := queueBytes / chunkSize
	n := inQueue + oooCapacity + window // all an honest sender can have in flight
	for i := range n {
		c.receive(Message{Type: OutputStreamData, Sequence: int64(i), Payload: bytes.Repeat([]byte{byte(i)}, chunkSize)})
	}
	acked := l.count()
	if want := inQueue + oooCapacity; acked != want {
		t.Errorf("%d acknowledgements sent before the reader read anything, want %d (the rest wait for room)", acked, want)
	}
	for i := range n {
		m, err := c.recvTimeout(time.Second)
		if err != nil {
			t.Fatalf("message %d of %d never came: %v", i, n, err)
		}
		if m.Sequence != int64(i) || m.Payload[0] != byte(i) {
			t.Fatalf("message %d: got sequence %d", i, m.Sequence)
		}
	}
	if acked = l.count(); acked != n {
		t.Errorf("after reading everything, %d of %d messages were acknowledged", acked, n)
	}
}

// countingLink counts the frames written to it and reads nothing.
type countingLink struct {
	mu     sync.Mutex
	frames int
	closed chan struct{}
}

func (l *countingLink) ReadMessage() (int, []byte, error) {
	<-l.closed
	return 0, nil, io.EOF
}

func (l *countingLink) WriteMessage(int, []byte) error {
	l.mu.Lock()
	l.frames++
	l.mu.Unlock()
	return nil
}

func (l *countingLink) Close() error { return nil }

func (l *countingLink) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.frames
}
