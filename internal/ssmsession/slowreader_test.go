package ssmsession

import (
	"bytes"
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
