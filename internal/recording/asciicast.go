package recording

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Header is an asciicast v2 header (docs.asciinema.org/manual/asciicast/v2).
type Header struct {
	Version       int               `json:"version"`
	Width         int               `json:"width"`
	Height        int               `json:"height"`
	Timestamp     int64             `json:"timestamp,omitempty"`
	Duration      float64           `json:"duration,omitempty"`
	IdleTimeLimit float64           `json:"idle_time_limit,omitempty"`
	Command       string            `json:"command,omitempty"`
	Title         string            `json:"title,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
}

// Default terminal size for sessions without a terminal, whose output a
// player still shows on one.
const (
	defaultCols = 80
	defaultRows = 24
)

// WriteAsciicast writes the session as asciicast v2: the header, then one
// line per event. Terminal output and input become "o" and "i" events,
// window changes "r" events; without a terminal, stdout and stderr are
// both "o" (asciicast has one output stream) with bare line feeds made
// CR LF as a terminal would show them, and stdin is "i". Bytes that are
// not UTF-8 become U+FFFD, as asciinema's own recorder writes them; a
// character split across two writes is joined first.
func WriteAsciicast(w io.Writer, info Info, events Events) error {
	if info.EventLog {
		return ErrEventLog
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	h := Header{Version: 2, Width: info.Cols, Height: info.Rows, Timestamp: info.Start.Unix(),
		Title: Title(info), Env: map[string]string{"SHELL": "/bin/bash"}}
	if h.Width <= 0 || h.Height <= 0 {
		h.Width, h.Height = defaultCols, defaultRows
	}
	if info.Asked != "" {
		h.Command = info.Asked
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return err
	}
	bw.Write(hb)
	bw.WriteByte('\n')
	var pending [2][]byte // an incomplete UTF-8 sequence held per direction
	var line []byte
	for {
		ev, err := events.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		var code string
		var data []byte
		switch {
		case ev.Kind == Resize && (ev.Rows == 0 || ev.Cols == 0):
			// A terminal that reported no size: players need one.
			continue
		case ev.Kind == Resize:
			code, data = "r", []byte(strconv.Itoa(ev.Cols)+"x"+strconv.Itoa(ev.Rows))
		case ev.Kind.Output(), ev.Kind.Input():
			dir := 0
			code = "o"
			if ev.Kind.Input() {
				dir, code = 1, "i"
			}
			data = append(pending[dir], ev.Data...)
			if !info.Terminal && ev.Kind.Output() {
				data = crlf(data)
			}
			cut := completeUTF8(data)
			pending[dir] = append([]byte(nil), data[cut:]...)
			data = data[:cut]
			if len(data) == 0 {
				continue
			}
		default:
			continue
		}
		line = appendEvent(line[:0], ev.At, code, data)
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// Title is a one-line description of the session for players and lists.
func Title(info Info) string {
	what := "login shell"
	if info.Asked != "" {
		what = info.Asked
		if len(what) > 80 {
			what = what[:80] + "..."
		}
	}
	return fmt.Sprintf("%s on %s: %s", info.User, cmpOr(info.Host, "?"), strings.ToValidUTF8(what, "?"))
}

func cmpOr(s, or string) string {
	if s == "" {
		return or
	}
	return s
}

// appendEvent appends [seconds, code, data] and a newline.
func appendEvent(b []byte, at time.Duration, code string, data []byte) []byte {
	b = append(b, '[')
	b = strconv.AppendFloat(b, at.Seconds(), 'f', 6, 64)
	b = append(b, `, "`...)
	b = append(b, code...)
	b = append(b, `", `...)
	b = appendJSONString(b, data)
	return append(b, "]\n"...)
}

// appendJSONString appends data as a JSON string, invalid UTF-8 as U+FFFD.
func appendJSONString(b, data []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else if r == '\u2028' || r == '\u2029' {
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			b = append(b, data[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// completeUTF8 returns how much of b ends on a whole character: a
// sequence cut by the end of a write waits for its rest.
func completeUTF8(b []byte) int {
	for back := 1; back <= 3 && back <= len(b); back++ {
		c := b[len(b)-back]
		if c < utf8.RuneSelf {
			return len(b)
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-back:]) {
				return len(b) - back
			}
			return len(b)
		}
	}
	return len(b)
}

// crlf makes each line feed not preceded by a carriage return CR LF.
func crlf(b []byte) []byte {
	if bytes.IndexByte(b, '\n') < 0 {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// Cast reads an asciicast v2 recording: what the service sends for a
// recording to be played, and what asciinema writes.
type Cast struct {
	Header Header
	r      *bufio.Reader
	line   int
	last   time.Duration
}

// Limits on an asciicast a reader accepts.
const (
	maxCastLine = 16 << 20
)

// ReadAsciicast reads the header of an asciicast v2 recording; its events
// follow from Next.
func ReadAsciicast(r io.Reader) (*Cast, error) {
	c := &Cast{r: bufio.NewReaderSize(r, 64<<10)}
	line, err := c.readLine()
	if errors.Is(err, io.EOF) {
		return nil, errors.New("asciicast: the recording is empty: it has no header line")
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&c.Header); err != nil {
		return nil, fmt.Errorf("asciicast: line 1 is not the header object: %v", err)
	}
	if c.Header.Version != 2 {
		return nil, fmt.Errorf("asciicast: version %d: only version 2 is read", c.Header.Version)
	}
	if c.Header.Width <= 0 || c.Header.Height <= 0 || c.Header.Width > maxTerminalDim || c.Header.Height > maxTerminalDim {
		return nil, fmt.Errorf("asciicast: the header's terminal size %d x %d is not one", c.Header.Width, c.Header.Height)
	}
	if l := c.Header.IdleTimeLimit; l < 0 || math.IsNaN(l) {
		return nil, fmt.Errorf("asciicast: idle_time_limit %v is negative", l)
	}
	return c, nil
}

func (c *Cast) readLine() ([]byte, error) {
	for {
		c.line++
		var b []byte
		for {
			chunk, err := c.r.ReadSlice('\n')
			b = append(b, chunk...)
			if len(b) > maxCastLine {
				return nil, fmt.Errorf("asciicast: line %d is longer than %d bytes", c.line, maxCastLine)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("asciicast: reading line %d: %w", c.line, err)
			}
			if err != nil && len(b) == 0 {
				return nil, io.EOF
			}
			break
		}
		if len(bytes.TrimSpace(b)) > 0 {
			return b, nil
		}
	}
}

// Next returns the next event: "o" as TTYOut, "i" as TTYIn, "r" as
// Resize; markers are skipped. Times may not go backwards.
func (c *Cast) Next() (Event, error) {
	for {
		line, err := c.readLine()
		if err != nil {
			return Event{}, err
		}
		var raw []json.RawMessage
		if err := json.Unmarshal(line, &raw); err != nil || len(raw) != 3 {
			return Event{}, fmt.Errorf("asciicast: line %d is not an event [time, code, data]", c.line)
		}
		var secs float64
		var code, data string
		if json.Unmarshal(raw[0], &secs) != nil || json.Unmarshal(raw[1], &code) != nil || json.Unmarshal(raw[2], &data) != nil {
			return Event{}, fmt.Errorf("asciicast: line %d is not an event [number, string, string]", c.line)
		}
		if math.IsNaN(secs) || secs < 0 || secs > maxDelay.Seconds() {
			return Event{}, fmt.Errorf("asciicast: line %d: time %v is not seconds since the start", c.line, secs)
		}
		at := time.Duration(secs * float64(time.Second))
		if at < c.last {
			return Event{}, fmt.Errorf("asciicast: line %d: time %.6f is before the previous event's", c.line, secs)
		}
		c.last = at
		ev := Event{At: at}
		switch code {
		case "o":
			ev.Kind, ev.Data = TTYOut, []byte(data)
		case "i":
			ev.Kind, ev.Data = TTYIn, []byte(data)
		case "r":
			cols, rows, ok := strings.Cut(data, "x")
			w, err1 := strconv.Atoi(cols)
			h, err2 := strconv.Atoi(rows)
			if !ok || err1 != nil || err2 != nil || w <= 0 || h <= 0 || w > maxTerminalDim || h > maxTerminalDim {
				return Event{}, fmt.Errorf("asciicast: line %d: resize %.20q is not COLSxROWS", c.line, data)
			}
			ev.Kind, ev.Cols, ev.Rows = Resize, w, h
		default:
			continue // markers and codes of later versions
		}
		return ev, nil
	}
}
