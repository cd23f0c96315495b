// Package ssmsession speaks the Session Manager data channel as the
// session-manager-plugin (client) and the SSM agent speak it, so that
// Passport's CLI works against AWS and the official plugin works against
// the lab. Both ends live here: Dial is the client, Agent the agent's side.
//
// A session is a websocket to the StreamUrl StartSession returns. The
// client's first message is text, the OpenDataChannel JSON with the
// TokenValue; everything after is binary frames (Message, Encode, Decode):
// a fixed 120-byte header (type, schema version, date, sequence number,
// flags, message id, SHA-256 of the payload, payload type and length) and
// the payload.
//
// Stream messages (input_stream_data from the client, output_stream_data
// from the agent) are numbered from 0 in each direction and each one is
// acknowledged by id and number. The receiver delivers them in order,
// holding early ones in a bounded buffer; the sender keeps every message
// until it is acknowledged and sends it again after a timeout derived from
// measured round trips, or at once on a new websocket when a session is
// resumed, so a dropped connection loses nothing.
//
// The agent opens with a HandshakeRequest naming the session type (always
// "Port" here) and its properties; the client answers with a
// HandshakeResponse, and HandshakeComplete ends the handshake. A
// port-forwarding session (type LocalPortForwarding) then carries smux v1
// frames, one smux stream per TCP connection; an SSH session carries its
// one connection directly. Flags travel as payload type Flag:
// TerminateSession from the client, ConnectToPortError from the agent.
package ssmsession
