package ssmsession

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func validFrame(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := m.Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFrameRoundTrip(t *testing.T) {
	m := Message{
		Type: InputStreamData, SchemaVersion: 1, CreatedDate: time.UnixMilli(1_700_000_000_123),
		Sequence: 42, Flags: FlagSYN, ID: NewMessageID(), PayloadType: Output, Payload: []byte("payload"),
	}
	got, err := Decode(validFrame(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if got.Type != m.Type || got.SchemaVersion != 1 || !got.CreatedDate.Equal(m.CreatedDate) || got.Sequence != 42 ||
		got.Flags != FlagSYN || got.ID != m.ID || got.PayloadType != Output || string(got.Payload) != "payload" {
		t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, m)
	}
}

// TestFrameLayout pins the wire layout the plugin and agent read: a header
// length of 116, the type padded with spaces, and the message id's halves
// swapped (least significant 8 bytes first).
func TestFrameLayout(t *testing.T) {
	id := MessageID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	b := validFrame(t, Message{Type: Acknowledge, CreatedDate: time.UnixMilli(5), Sequence: 7, Flags: 3, ID: id, PayloadType: Flag, Payload: []byte{0, 0, 0, 2}})
	be := binary.BigEndian
	sum := sha256.Sum256([]byte{0, 0, 0, 2})
	checks := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"header length", b[0:4], be.AppendUint32(nil, 116)},
		{"message type", b[4:36], []byte("acknowledge                     ")},
		{"schema version", b[36:40], be.AppendUint32(nil, 1)},
		{"created date", b[40:48], be.AppendUint64(nil, 5)},
		{"sequence", b[48:56], be.AppendUint64(nil, 7)},
		{"flags", b[56:64], be.AppendUint64(nil, 3)},
		{"message id", b[64:80], []byte{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7}},
		{"digest", b[80:112], sum[:]},
		{"payload type", b[112:116], be.AppendUint32(nil, 10)},
		{"payload length", b[116:120], be.AppendUint32(nil, 4)},
		{"payload", b[120:], []byte{0, 0, 0, 2}},
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: % x, want % x", c.name, c.got, c.want)
		}
	}
	if got := id.String(); got != "00010203-0405-0607-0809-0a0b0c0d0e0f" {
		t.Errorf("id string %s", got)
	}
}

func TestDecodeRefusesBadFrames(t *testing.T) {
	good := validFrame(t, Message{Type: OutputStreamData, Sequence: 1, ID: NewMessageID(), PayloadType: Output, Payload: []byte("data")})
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"empty", nil, ErrShortFrame},
		{"header only, cut", good[:100], ErrShortFrame},
		{"header length zero", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 0); return b }), ErrBadHeader},
		{"header length huge", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 1<<31); return b }), ErrBadHeader},
		{"blank message type", edit(func(b []byte) []byte { copy(b[4:36], bytes.Repeat([]byte{' '}, 32)); return b }), ErrBadHeader},
		{"control bytes in type", edit(func(b []byte) []byte { b[5] = 0x01; return b }), ErrBadHeader},
		{"payload cut", good[:len(good)-1], ErrBadLength},
		{"payload padded", append(append([]byte(nil), good...), 0), ErrBadLength},
		{"length says more", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[116:], 5); return b }), ErrBadLength},
		{"length oversized", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[116:], MaxPayload+1); return b }), ErrTooLarge},
		{"length wraps", edit(func(b []byte) []byte { binary.BigEndian.PutUint32(b[116:], 0xffffffff); return b }), ErrTooLarge},
		{"payload altered", edit(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrBadDigest},
		{"digest altered", edit(func(b []byte) []byte { b[90] ^= 1; return b }), ErrBadDigest},
		{"negative sequence", edit(func(b []byte) []byte { b[48] = 0x80; return b }), ErrBadHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.frame); !errors.Is(err, tt.want) {
				t.Fatalf("Decode: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeRefusesBadMessages(t *testing.T) {
	for _, m := range []Message{
		{Type: ""},
		{Type: "a_message_type_longer_than_32_bytes"},
		{Type: "two words"},
		{Type: Acknowledge, Payload: make([]byte, MaxPayload+1)},
	} {
		if _, err := m.Encode(nil); err == nil {
			t.Errorf("Encode accepted type %q with %d payload bytes", m.Type, len(m.Payload))
		}
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts encodes back to
// a frame that decodes to the same message.
func FuzzDecode(f *testing.F) {
	f.Add(validFrame(f, Message{Type: OutputStreamData, Sequence: 3, ID: NewMessageID(), PayloadType: Output, Payload: []byte("hello")}))
	f.Add(validFrame(f, Message{Type: Acknowledge, Flags: 3, ID: NewMessageID(), Payload: []byte(`{"AcknowledgedMessageType":"input_stream_data"}`)}))
	f.Add(validFrame(f, Message{Type: StartPublication, ID: NewMessageID()}))
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		again, err := m.Encode(nil)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		m2, err := Decode(again)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		if m2.Type != m.Type || m2.Sequence != m.Sequence || m2.ID != m.ID || m2.Flags != m.Flags ||
			m2.PayloadType != m.PayloadType || !bytes.Equal(m2.Payload, m.Payload) || !m2.CreatedDate.Equal(m.CreatedDate) {
			t.Fatalf("round trip changed the message: %+v vs %+v", m, m2)
		}
	})
}

// FuzzAckJSON: the hand-written acknowledgement JSON is json.Marshal's,
// byte for byte, whatever the type and id hold.
func FuzzAckJSON(f *testing.F) {
	f.Add("output_stream_data", "6e2a9e7c-5f0b-4c55-9d5e-0d7f1bd9a1c4", int64(7), true)
	f.Add("a\"b\\c<d>&\x00\u2028é", "", int64(-1), false)
	f.Fuzz(func(t *testing.T, typ, id string, seq int64, sequential bool) {
		a := ackContent{MessageType: typ, MessageID: id, SequenceNumber: seq, IsSequentialMessage: sequential}
		want, err := json.Marshal(a)
		if err != nil {
			t.Skip()
		}
		if got := a.appendJSON(nil); string(got) != string(want) {
			t.Fatalf("appendJSON = %s\njson.Marshal = %s", got, want)
		}
	})
}

// FuzzAckedSequence: reading an acknowledgement directly gives exactly
// what json.Unmarshal gives, for any payload.
func FuzzAckedSequence(f *testing.F) {
	f.Add([]byte(`{"AcknowledgedMessageType":"output_stream_data","AcknowledgedMessageId":"6e2a9e7c-5f0b-4c55-9d5e-0d7f1bd9a1c4","AcknowledgedMessageSequenceNumber":12,"IsSequentialMessage":true}`), "output_stream_data")
	f.Add([]byte(`{"AcknowledgedMessageType":"x","AcknowledgedMessageId":"","AcknowledgedMessageSequenceNumber":-0,"IsSequentialMessage":false}`), "x")
	f.Add([]byte(`{"AcknowledgedMessageSequenceNumber":1e2,"AcknowledgedMessageType":"a\u0062"}`), "ab")
	f.Fuzz(func(t *testing.T, payload []byte, want string) {
		seq, ok := ackedSequence(payload, want)
		var ack ackContent
		wantOK := json.Unmarshal(payload, &ack) == nil && ack.MessageType == want
		if ok != wantOK || (ok && seq != ack.SequenceNumber) {
			t.Fatalf("ackedSequence(%q, %q) = %d, %v; json.Unmarshal says %d, %v", payload, want, seq, ok, ack.SequenceNumber, wantOK)
		}
	})
}
