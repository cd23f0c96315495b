package ssmsession

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
)

// openDataChannel is the first (text) websocket message a client sends: it
// presents the token StartSession or ResumeSession returned.
type openDataChannel struct {
	MessageSchemaVersion string `json:"MessageSchemaVersion"`
	RequestID            string `json:"RequestId"`
	TokenValue           string `json:"TokenValue"`
	ClientID             string `json:"ClientId"`
	ClientVersion        string `json:"ClientVersion"`
}

// ackContent is an acknowledge message's payload. Acknowledgements are
// selective: each names one message, not everything before it.
type ackContent struct {
	MessageType         string `json:"AcknowledgedMessageType"`
	MessageID           string `json:"AcknowledgedMessageId"`
	SequenceNumber      int64  `json:"AcknowledgedMessageSequenceNumber"`
	IsSequentialMessage bool   `json:"IsSequentialMessage"`
}

// appendJSON appends a's JSON, exactly as encoding/json writes it, without
// reflection: one acknowledgement goes out per message received, and
// json.Marshal was a tenth of a tunnel's CPU. FuzzAckJSON holds it to
// json.Marshal's output byte for byte.
func (a ackContent) appendJSON(b []byte) []byte {
	b = append(b, `{"AcknowledgedMessageType":`...)
	b = appendJSONString(b, a.MessageType)
	b = append(b, `,"AcknowledgedMessageId":`...)
	b = appendJSONString(b, a.MessageID)
	b = append(b, `,"AcknowledgedMessageSequenceNumber":`...)
	b = strconv.AppendInt(b, a.SequenceNumber, 10)
	b = append(b, `,"IsSequentialMessage":`...)
	b = strconv.AppendBool(b, a.IsSequentialMessage)
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Anything outside printable
// ASCII, and the characters JSON or HTML-safe encoders escape, goes through
// encoding/json, so the result is always what json.Marshal would write.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ackedSequence reads an acknowledgement's payload and returns the sequence
// number it acknowledges when it is for a message of type want. The
// payload json.Marshal writes (this end's, and the reference agent's, whose
// fields come in the same order) is read directly; any other spelling goes
// through encoding/json, so the answer is always json.Unmarshal's.
// FuzzAckedSequence holds the two to the same answer.
func ackedSequence(payload []byte, want string) (int64, bool) {
	if seq, typ, ok := parseCanonicalAck(payload); ok {
		return seq, typ == want
	}
	var ack ackContent
	if json.Unmarshal(payload, &ack) != nil || ack.MessageType != want {
		return 0, false
	}
	return ack.SequenceNumber, true
}

// parseCanonicalAck reads exactly what ackContent.appendJSON writes for
// plain strings; ok is false for anything else.
func parseCanonicalAck(b []byte) (seq int64, typ string, ok bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"AcknowledgedMessageType":"`))
	if !ok {
		return 0, "", false
	}
	typBytes, rest, ok := plainString(rest)
	if !ok {
		return 0, "", false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"AcknowledgedMessageId":"`)); !ok {
		return 0, "", false
	}
	if _, rest, ok = plainString(rest); !ok {
		return 0, "", false
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"AcknowledgedMessageSequenceNumber":`)); !ok {
		return 0, "", false
	}
	num, rest, ok := bytes.Cut(rest, []byte(`,"IsSequentialMessage":`))
	if !ok || (string(rest) != "true}" && string(rest) != "false}") {
		return 0, "", false
	}
	// Digits only, as json.Marshal writes an int64: no sign on zero, no
	// leading zeros, no exponent; anything else takes the slow path.
	if len(num) == 0 || len(num) > 20 || (num[0] == '0' && len(num) > 1) || (num[0] == '-' && (len(num) == 1 || num[1] == '0')) {
		return 0, "", false
	}
	seq, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil {
		return 0, "", false
	}
	for _, known := range knownTypes {
		if string(typBytes) == known {
			return seq, known, true
		}
	}
	return seq, string(typBytes), true
}

// plainString reads a JSON string body up to its closing quote when it
// holds only printable ASCII without escapes.
func plainString(b []byte) (s, rest []byte, ok bool) {
	for i, c := range b {
		switch {
		case c == '"':
			return b[:i], b[i+1:], true
		case c < 0x20 || c >= 0x7f || c == '\\':
			return nil, nil, false
		}
	}
	return nil, nil, false
}

// channelClosed is a channel_closed message's payload.
type channelClosed struct {
	MessageID     string `json:"MessageId"`
	CreatedDate   string `json:"CreatedDate"`
	DestinationID string `json:"DestinationId"`
	SessionID     string `json:"SessionId"`
	MessageType   string `json:"MessageType"`
	SchemaVersion int    `json:"SchemaVersion"`
	Output        string `json:"Output"`
}

// Handshake action types and statuses.
const (
	actionSessionType   = "SessionType"
	actionKMSEncryption = "KMSEncryption"

	actionSuccess     = 1
	actionFailed      = 2
	actionUnsupported = 3
)

type handshakeRequest struct {
	AgentVersion           string         `json:"AgentVersion"`
	RequestedClientActions []clientAction `json:"RequestedClientActions"`
}

type clientAction struct {
	ActionType       string          `json:"ActionType"`
	ActionParameters json.RawMessage `json:"ActionParameters"`
}

// SessionType is what the agent announces in the handshake: the session
// plugin ("Port", or a shell type) and its properties (a shell's are empty).
type SessionType struct {
	SessionType string         `json:"SessionType"`
	Properties  PortProperties `json:"Properties"`
}

// PortProperties are a port session's properties, as the session document
// sets them: AWS-StartSSHSession sets only portNumber; the port-forwarding
// documents add type LocalPortForwarding (and host for a remote host).
type PortProperties struct {
	PortNumber      string `json:"portNumber,omitempty"`
	Type            string `json:"type,omitempty"`
	Host            string `json:"host,omitempty"`
	LocalPortNumber string `json:"localPortNumber,omitempty"`
}

// LocalPortForwarding is the port session type that may be multiplexed.
const LocalPortForwarding = "LocalPortForwarding"

type processedAction struct {
	ActionType   string          `json:"ActionType"`
	ActionStatus int             `json:"ActionStatus"`
	ActionResult json.RawMessage `json:"ActionResult"`
	Error        string          `json:"Error"`
}

type handshakeResponse struct {
	ClientVersion          string            `json:"ClientVersion"`
	ProcessedClientActions []processedAction `json:"ProcessedClientActions"`
	Errors                 []string          `json:"Errors"`
}

type handshakeComplete struct {
	HandshakeTimeToComplete time.Duration `json:"HandshakeTimeToComplete"`
	CustomerMessage         string        `json:"CustomerMessage"`
}
