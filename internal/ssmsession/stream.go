package ssmsession

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/xtaci/smux"
)

// stream is the byte stream a port session carries in Output messages: the
// TCP connection itself for an unmultiplexed session, smux frames for a
// multiplexed one. Flags arriving between data are passed to onFlag.
type stream struct {
	ch     *channel
	onFlag func(FlagValue)
	// onClose, when set, replaces closing the channel: smux closes its
	// connection when its keep-alive runs out, and the end that owns the
	// session must then announce the end (ChannelClosed) before the
	// channel goes.
	onClose func()

	mu  sync.Mutex // one reader at a time
	buf []byte
	// whole is the payload buf is the unread rest of, released to the
	// payload pool once read to its end.
	whole []byte
}

func (s *stream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.buf) == 0 {
		m, err := s.ch.recv()
		if err != nil {
			return 0, readError(err)
		}
		switch m.PayloadType {
		case Output:
			s.buf, s.whole = m.Payload, m.Payload
		case Flag:
			if f, err := parseFlag(m.Payload); err == nil && s.onFlag != nil {
				s.onFlag(f)
			}
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	if len(s.buf) == 0 {
		releasePayload(s.whole)
		s.whole = nil
	}
	return n, nil
}

// readError turns the end of a session into io.EOF, the way a TCP
// connection's reader sees its peer close; failures stay errors.
func readError(err error) error {
	var closed *ClosedError
	if errors.Is(err, ErrClosed) || errors.As(err, &closed) {
		return io.EOF
	}
	return err
}

func (s *stream) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := s.ch.send(Output, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close ends the session from this side.
func (s *stream) Close() error {
	if s.onClose != nil {
		s.onClose()
		return nil
	}
	s.ch.close(ErrClosed)
	return nil
}

// compareVersions compares dotted numeric versions such as 3.1.1511.0;
// missing or non-numeric parts count as 0.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// smuxHeaderSize is the length of an smux frame header (version, command,
// length, stream id).
const smuxHeaderSize = 8

// muxConfig is smux's default with frames that fill exactly one stream
// message: smux writes each frame, header and data, in one Write, and a
// 32 KiB frame would travel as two full messages and an 8-byte third.
// The frame size is the sender's choice; any peer reads any size.
func muxConfig() *smux.Config {
	cfg := smux.DefaultConfig()
	cfg.MaxFrameSize = chunkSize - smuxHeaderSize
	return cfg
}

// copyBufferSize is a whole number of smux frames, each one stream
// message, and a whole number of messages' worth less a few bytes for a
// plain stream: a full read then leaves no message of a few bytes behind.
// io.Copy's 32 KiB buffer would send two full messages and a third of 16
// bytes for every read.
const copyBufferSize = 4 * (chunkSize - smuxHeaderSize)

// Copy copies src to dst, as io.Copy does, through a buffer sized for
// session streams. Use it to feed a port's or a local connection's bytes
// into a session; it never hands the work to src's WriteTo or dst's
// ReadFrom, which would choose their own sizes.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, make([]byte, copyBufferSize))
}
