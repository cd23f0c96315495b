package ssmsession

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Message types, as they appear space-padded in a frame's 32-byte type field.
const (
	InputStreamData  = "input_stream_data"  // client to agent
	OutputStreamData = "output_stream_data" // agent to client
	Acknowledge      = "acknowledge"
	ChannelClosed    = "channel_closed"
	StartPublication = "start_publication"
	PausePublication = "pause_publication"
)

// PayloadType says how a stream message's payload is to be read.
type PayloadType uint32

// Payload types.
const (
	Output               PayloadType = 1
	Error                PayloadType = 2
	Size                 PayloadType = 3
	Parameter            PayloadType = 4
	HandshakeRequest     PayloadType = 5
	HandshakeResponse    PayloadType = 6
	HandshakeComplete    PayloadType = 7
	EncChallengeRequest  PayloadType = 8
	EncChallengeResponse PayloadType = 9
	Flag                 PayloadType = 10
	StdErr               PayloadType = 11
	ExitCode             PayloadType = 12
)

// FlagValue is the 4-byte big-endian payload of a Flag message.
type FlagValue uint32

// Flags.
const (
	DisconnectToPort   FlagValue = 1 // the client's local connection closed (unmultiplexed port sessions)
	TerminateSession   FlagValue = 2 // the client ends the session
	ConnectToPortError FlagValue = 3 // the agent could not reach the port
)

// Frame flag bits. The agent sets SYN on the first message of its stream;
// acknowledgements carry SYN|FIN.
const (
	FlagSYN uint64 = 1 << 0
	FlagFIN uint64 = 1 << 1
)

// Frame layout. Every integer is big-endian. The header length field counts
// the bytes before the payload length field, so the payload starts at
// headerLength+4.
const (
	typeLen     = 32
	digestLen   = sha256.Size
	offType     = 4
	offSchema   = offType + typeLen // 36
	offCreated  = offSchema + 4     // 40
	offSequence = offCreated + 8    // 48
	offFlags    = offSequence + 8   // 56
	offID       = offFlags + 8      // 64
	offDigest   = offID + 16        // 80
	offPayType  = offDigest + 32    // 112
	offPayLen   = offPayType + 4    // 116
	offPayload  = offPayLen + 4     // 120

	headerLength = offPayLen
	// HeaderSize is the size of a frame without its payload.
	HeaderSize = offPayload
)

// MaxPayload bounds a frame's payload. The reference implementations send
// at most a few kilobytes per message; anything near this bound is hostile.
const MaxPayload = 1 << 20

// SchemaVersion is the frame schema both reference implementations write.
const SchemaVersion = 1

// MessageID is a message's UUID in canonical (RFC 4122) byte order.
type MessageID [16]byte

// NewMessageID returns a random (version 4) UUID.
func NewMessageID() MessageID {
	var id MessageID
	rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}

// String returns the hyphenated form, as acknowledgements quote it.
func (id MessageID) String() string {
	return string(id.appendText(make([]byte, 0, 36)))
}

// appendText appends the canonical text form of id, 8-4-4-4-12 hex digits.
func (id MessageID) appendText(b []byte) []byte {
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

const hexDigits = "0123456789abcdef"

// Message is one data-channel frame.
type Message struct {
	Type          string // InputStreamData, OutputStreamData, Acknowledge, ...
	SchemaVersion uint32
	CreatedDate   time.Time // millisecond precision on the wire
	Sequence      int64
	Flags         uint64
	ID            MessageID
	PayloadType   PayloadType
	Payload       []byte
}

// Frame errors. Decode wraps them with detail; match with errors.Is.
var (
	ErrShortFrame = errors.New("ssmsession: frame is shorter than its header")
	ErrBadHeader  = errors.New("ssmsession: frame header is malformed")
	ErrBadLength  = errors.New("ssmsession: frame payload length does not match the frame")
	ErrTooLarge   = errors.New("ssmsession: frame payload is larger than allowed")
	ErrBadDigest  = errors.New("ssmsession: frame payload digest does not match its payload")
)

// Encode appends m's wire form to dst. The digest is computed here; the
// schema version defaults to SchemaVersion and the date to now.
func (m *Message) Encode(dst []byte) ([]byte, error) {
	if len(m.Type) == 0 || len(m.Type) > typeLen || !printable(m.Type) {
		return nil, fmt.Errorf("ssmsession: message type %q must be 1 to %d printable characters", m.Type, typeLen)
	}
	if len(m.Payload) > MaxPayload {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(m.Payload), MaxPayload)
	}
	schema := m.SchemaVersion
	if schema == 0 {
		schema = SchemaVersion
	}
	created := m.CreatedDate
	if created.IsZero() {
		created = time.Now()
	}
	// Every byte of the frame is written below, so it is grown, not
	// zeroed: a data message's payload would otherwise be cleared and
	// copied once more.
	start := len(dst)
	dst = slices.Grow(dst, HeaderSize+len(m.Payload))[:start+HeaderSize+len(m.Payload)]
	b := dst[start:]
	be := binary.BigEndian
	be.PutUint32(b, headerLength)
	copy(b[offType:offSchema], strings.Repeat(" ", typeLen))
	copy(b[offType:], m.Type)
	be.PutUint32(b[offSchema:], schema)
	be.PutUint64(b[offCreated:], uint64(created.UnixMilli()))
	be.PutUint64(b[offSequence:], uint64(m.Sequence))
	be.PutUint64(b[offFlags:], m.Flags)
	putID(b[offID:], m.ID)
	sum := sha256.Sum256(m.Payload)
	copy(b[offDigest:], sum[:])
	be.PutUint32(b[offPayType:], uint32(m.PayloadType))
	be.PutUint32(b[offPayLen:], uint32(len(m.Payload)))
	copy(b[offPayload:], m.Payload)
	return dst, nil
}

// The message id travels as two big-endian 64-bit halves, least significant
// half first: the layout of Java's UUID.getLeastSignificantBits then
// getMostSignificantBits, which the service's other implementations follow.
// A UUID copied byte for byte would be read back with its halves swapped.
func putID(b []byte, id MessageID) {
	copy(b[0:8], id[8:16])
	copy(b[8:16], id[0:8])
}

func getID(b []byte) MessageID {
	var id MessageID
	copy(id[8:16], b[0:8])
	copy(id[0:8], b[8:16])
	return id
}

// Decode parses and checks one frame. The returned payload aliases b.
//
// It is stricter than the reference parsers: the header length must be the
// one every implementation writes, the payload length must account for
// exactly the rest of the frame, and the digest is checked for every
// non-empty payload (publication notices included), so a frame that was cut,
// padded or altered on the way is refused rather than half-read.
func Decode(b []byte) (Message, error) {
	if len(b) < HeaderSize {
		return Message{}, fmt.Errorf("%w: %d bytes, need at least %d", ErrShortFrame, len(b), HeaderSize)
	}
	be := binary.BigEndian
	if hl := be.Uint32(b); hl != headerLength {
		return Message{}, fmt.Errorf("%w: header length %d, want %d", ErrBadHeader, hl, headerLength)
	}
	typ, err := messageType(b[offType:offSchema])
	if err != nil {
		return Message{}, err
	}
	n := be.Uint32(b[offPayLen:])
	if n > MaxPayload {
		return Message{}, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, n, MaxPayload)
	}
	if int(n) != len(b)-HeaderSize {
		return Message{}, fmt.Errorf("%w: header says %d bytes, frame carries %d", ErrBadLength, n, len(b)-HeaderSize)
	}
	m := Message{
		Type:          typ,
		SchemaVersion: be.Uint32(b[offSchema:]),
		CreatedDate:   time.UnixMilli(int64(be.Uint64(b[offCreated:]))),
		Sequence:      int64(be.Uint64(b[offSequence:])),
		Flags:         be.Uint64(b[offFlags:]),
		ID:            getID(b[offID:]),
		PayloadType:   PayloadType(be.Uint32(b[offPayType:])),
		Payload:       b[offPayload:],
	}
	if n > 0 {
		sum := sha256.Sum256(m.Payload)
		if subtle.ConstantTimeCompare(sum[:], b[offDigest:offDigest+digestLen]) != 1 {
			return Message{}, fmt.Errorf("%w (%s message, sequence %d)", ErrBadDigest, typ, m.Sequence)
		}
	}
	if m.Sequence < 0 {
		return Message{}, fmt.Errorf("%w: negative sequence number %d", ErrBadHeader, m.Sequence)
	}
	return m, nil
}

// messageType reads the padded type field: the plugin pads with spaces, other
// writers with NULs; anything else inside it is refused.
func messageType(field []byte) (string, error) {
	name := bytes.TrimRight(field, " \x00")
	// The names the protocol uses come back as the constants, without a
	// string allocated for every frame.
	for _, known := range knownTypes {
		if string(name) == known {
			return known, nil
		}
	}
	s := string(name)
	if s == "" || !printable(s) {
		return "", fmt.Errorf("%w: message type field %q is not a printable name", ErrBadHeader, clip(s))
	}
	return s, nil
}

var knownTypes = []string{InputStreamData, OutputStreamData, Acknowledge, ChannelClosed, StartPublication, PausePublication}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// flagPayload encodes a Flag message's payload.
func flagPayload(f FlagValue) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(f))
}

// parseFlag reads a Flag message's payload.
func parseFlag(p []byte) (FlagValue, error) {
	if len(p) != 4 {
		return 0, fmt.Errorf("ssmsession: flag payload is %d bytes, want 4", len(p))
	}
	return FlagValue(binary.BigEndian.Uint32(p)), nil
}
