package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
)

// A shell session's process talks to the lab over the connection its
// CONNECT /shell request turned into, in frames: a type byte, a 4-byte
// big-endian length and that many bytes.
//
//	lab -> host: 'i' input, 'r' resize (cols, rows as 2-byte numbers), 'k' kill
//	host -> lab: 'o' output (the terminal, or stdout), 'e' stderr,
//	             'x' exit code (4 bytes, signed), 'f' why it could not start
const (
	frameInput  = 'i'
	frameResize = 'r'
	frameKill   = 'k'
	frameOutput = 'o'
	frameStderr = 'e'
	frameExit   = 'x'
	frameFailed = 'f'
)

// maxShellFrame bounds a frame's length, so a broken peer cannot make the
// other end allocate without limit.
const maxShellFrame = 1 << 20

func writeShellFrame(w io.Writer, typ byte, data []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(data)))
	if _, err := w.Write(append(hdr[:], data...)); err != nil {
		return err
	}
	return nil
}

func readShellFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxShellFrame {
		return 0, nil, fmt.Errorf("a shell frame of %d bytes is larger than %d", n, maxShellFrame)
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, nil, err
	}
	return hdr[0], data, nil
}

// shellQuery is what CONNECT /shell asks for: the user to run as, the
// command (empty for a shell), whether to give it a terminal and the
// terminal's first size.
type shellQuery struct {
	User       string
	Command    string
	Terminal   bool
	Cols, Rows int
}

func (q shellQuery) encode() string {
	v := url.Values{"user": {q.User}, "command": {q.Command}, "cols": {strconv.Itoa(q.Cols)}, "rows": {strconv.Itoa(q.Rows)}}
	if q.Terminal {
		v.Set("terminal", "1")
	}
	return v.Encode()
}

func decodeShellQuery(v url.Values) (shellQuery, error) {
	q := shellQuery{User: v.Get("user"), Command: v.Get("command"), Terminal: v.Get("terminal") == "1"}
	var err1, err2 error
	q.Cols, err1 = strconv.Atoi(v.Get("cols"))
	q.Rows, err2 = strconv.Atoi(v.Get("rows"))
	if err := errors.Join(err1, err2); err != nil || q.Cols < 0 || q.Rows < 0 || q.Cols >= 1<<16 || q.Rows >= 1<<16 {
		return q, errors.New("cols and rows must be numbers from 0 to 65535")
	}
	if !validUser(q.User) {
		return q, fmt.Errorf("%q is not a user name", q.User)
	}
	return q, nil
}

// validUser accepts the names useradd would: lower-case letters, digits,
// '-', '_' and '.', not starting with '-', at most 32 characters.
func validUser(name string) bool {
	if name == "" || len(name) > 32 || name[0] == '-' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
