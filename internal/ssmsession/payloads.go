package ssmsession

import (
	"encoding/json"
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
// plugin ("Port" for every session Passport opens) and its properties.
type SessionType struct {
	SessionType string         `json:"SessionType"`
	Properties  PortProperties `json:"Properties"`
}

// PortProperties are a port session's properties, as the session document
// sets them: AWS-StartSSHSession sets only portNumber; the port-forwarding
// documents add type LocalPortForwarding (and host for a remote host).
type PortProperties struct {
	PortNumber      string `json:"portNumber"`
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
