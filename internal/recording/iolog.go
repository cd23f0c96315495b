// Package recording reads the session recordings Passport's recorder
// leaves on Linux hosts (sudo's I/O log: log, log.json, timing and the
// streams) into a session model, and serves what people do with them:
// export to asciicast v2, play in a terminal with the original timing,
// and search what was typed and printed.
//
// Recordings come from hosts, where a person with a sudo grant may have
// written anything into them before they were collected, so every byte is
// hostile until checked: the parsers bound every line, count and size,
// and an error names the file, the line and what was wrong.
package recording

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/passport-access/terraform-provider-passport/internal/collect"
)

// Kind says what an event of a session is.
type Kind uint8

// Event kinds, numbered as sudo numbers them in its timing file (0 to 5,
// and 7; 6 is sudo 1.8.7's terminal output, read as TTYOut).
const (
	StdIn Kind = iota
	StdOut
	StdErr
	TTYIn
	TTYOut
	Resize
	_
	Suspend
)

var kindNames = [...]string{"stdin", "stdout", "stderr", "ttyin", "ttyout", "resize", "", "suspend"}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Input reports whether the event is what the person typed or sent.
func (k Kind) Input() bool { return k == StdIn || k == TTYIn }

// Output reports whether the event is what the session printed.
func (k Kind) Output() bool { return k == StdOut || k == StdErr || k == TTYOut }

// Event is one thing that happened in a session, At its offset from the
// start.
type Event struct {
	At   time.Duration
	Kind Kind
	// Data is the bytes read or written (input and output kinds).
	Data []byte
	// Rows and Cols are the terminal's new size (Resize).
	Rows, Cols int
	// Signal names what suspended or resumed the command (Suspend):
	// TSTP, CONT and the like.
	Signal string
}

// Events is a session's events in order. Next returns io.EOF after the
// last; the Data of an event is valid until the next call.
type Events interface {
	Next() (Event, error)
}

// Info is what a recording says about its session.
type Info struct {
	// User is the account the session ran as: the Passport user.
	User string `json:"user"`
	// SubmitUser is who started the recorded sudo (root, for Passport's
	// recorder: the second of its two hops).
	SubmitUser string    `json:"submit_user,omitempty"`
	Host       string    `json:"host,omitempty"`
	Start      time.Time `json:"start"`
	// Command is the program sudo ran and Argv its arguments; Asked is
	// what the person asked sshd for (empty for a login shell), read from
	// the argument Passport's session program was given.
	Command string   `json:"command"`
	Argv    []string `json:"argv,omitempty"`
	Asked   string   `json:"asked"`
	Cwd     string   `json:"cwd,omitempty"`
	TTY     string   `json:"tty,omitempty"`
	Rows    int      `json:"rows,omitempty"`
	Cols    int      `json:"cols,omitempty"`
	// Terminal is true when the session had a terminal (ttyin/ttyout).
	Terminal bool `json:"terminal"`
	// Client is the SSH client's address and port (SSH_CONNECTION), when
	// the recorder kept it.
	Client string `json:"client,omitempty"`
	// EventLog is true for a Windows event session (winevents.go): its
	// events are Security log lines, not a terminal's bytes.
	EventLog bool `json:"event_log,omitempty"`
}

// SessionProgram is the program Passport's recorder runs under sudo; its
// one argument is what the person asked sshd for.
const SessionProgram = "/usr/local/lib/passport/session"

// Limits on what a recording may hold before it is refused as damaged or
// hostile. Sudo writes at most its I/O buffer (64 KiB) per event.
const (
	maxInfoBytes   = 1 << 20
	maxTimingLine  = 256
	maxEventBytes  = 8 << 20
	maxDelay       = 366 * 24 * time.Hour
	maxTerminalDim = 10000
	maxArgs        = 4096
)

// Log is an opened sudo I/O log.
type Log struct {
	Info Info
	fsys fs.FS
}

// Open reads the description of the I/O log in fsys (a session's
// directory): log.json where sudo wrote one, else the legacy log file.
// The timing file and the streams are read by Events.
func Open(fsys fs.FS) (*Log, error) {
	if _, err := fs.Stat(fsys, collect.EventsFile); err == nil {
		return openEvents(fsys)
	}
	l := &Log{fsys: fsys}
	js, jerr := readSmall(fsys, "log.json")
	switch {
	case jerr == nil:
		if err := l.Info.parseJSON(js); err != nil {
			return nil, err
		}
	case errors.Is(jerr, fs.ErrNotExist):
		legacy, err := readSmall(fsys, "log")
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errors.New("recording: neither log.json nor log is in the recording: this is not a sudo I/O log")
		}
		if err != nil {
			return nil, err
		}
		if err := l.Info.parseLegacy(legacy); err != nil {
			return nil, err
		}
	default:
		return nil, jerr
	}
	if _, err := fs.Stat(fsys, "timing"); err != nil {
		return nil, fmt.Errorf("recording: the timing file is missing (%v): the session cannot be replayed", err)
	}
	// sudo creates every stream file whatever ran (empty, or an empty
	// gzip), so what says a session had a terminal is the terminal sudo
	// was run from.
	l.Info.Terminal = l.Info.TTY != "" && l.Info.TTY != "unknown"
	l.Info.Asked = asked(l.Info)
	return l, nil
}

// asked is what the person asked sshd for: the one argument of Passport's
// session program, or the whole command line of anything else.
func asked(in Info) string {
	if len(in.Argv) >= 1 && (in.Command == SessionProgram || in.Argv[0] == SessionProgram) {
		if len(in.Argv) >= 2 {
			return in.Argv[1]
		}
		return ""
	}
	if len(in.Argv) > 0 {
		return strings.Join(in.Argv, " ")
	}
	return in.Command
}

// readSmall reads a description file, refusing one larger than any sudo
// writes.
func readSmall(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := decompressed(f, name)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(r, maxInfoBytes+1))
	if err != nil {
		return nil, fmt.Errorf("recording: reading %s: %w", name, err)
	}
	if len(b) > maxInfoBytes {
		return nil, fmt.Errorf("recording: %s is larger than %d bytes: sudo writes nothing that large there; the recording is damaged or forged", name, maxInfoBytes)
	}
	return b, nil
}

// decompressed reads r through gzip when it starts with gzip's magic:
// sudo compresses every file but log unless compress_io is off.
func decompressed(r io.Reader, name string) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("recording: reading %s: %w", name, err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("recording: %s is not valid gzip: %w", name, err)
		}
		z.Multistream(false)
		return z, nil
	}
	return br, nil
}

// jsonInfo is log.json as sudo writes it (sudoers(5), "I/O log format").
type jsonInfo struct {
	Timestamp struct {
		Seconds     int64 `json:"seconds"`
		Nanoseconds int64 `json:"nanoseconds"`
	} `json:"timestamp"`
	Columns    int      `json:"columns"`
	Lines      int      `json:"lines"`
	Command    string   `json:"command"`
	RunArgv    []string `json:"runargv"`
	RunEnv     []string `json:"runenv"`
	RunUser    string   `json:"runuser"`
	SubmitCwd  string   `json:"submitcwd"`
	SubmitHost string   `json:"submithost"`
	SubmitUser string   `json:"submituser"`
	TTYName    string   `json:"ttyname"`
}

func (in *Info) parseJSON(b []byte) error {
	var j jsonInfo
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("recording: log.json is not sudo's JSON description: %v", err)
	}
	if j.Timestamp.Seconds <= 0 || j.Timestamp.Seconds > 1<<40 || j.Timestamp.Nanoseconds < 0 || j.Timestamp.Nanoseconds >= 1e9 {
		return fmt.Errorf("recording: log.json's timestamp (%d s, %d ns) is not a time sudo could have written", j.Timestamp.Seconds, j.Timestamp.Nanoseconds)
	}
	if len(j.RunArgv) > maxArgs || len(j.RunEnv) > maxArgs {
		return fmt.Errorf("recording: log.json has more than %d arguments or variables", maxArgs)
	}
	*in = Info{
		User: j.RunUser, SubmitUser: j.SubmitUser, Host: j.SubmitHost,
		Start:   time.Unix(j.Timestamp.Seconds, j.Timestamp.Nanoseconds).UTC(),
		Command: j.Command, Argv: j.RunArgv, Cwd: j.SubmitCwd, TTY: j.TTYName,
		Rows: j.Lines, Cols: j.Columns,
	}
	for _, kv := range j.RunEnv {
		if v, ok := strings.CutPrefix(kv, "SSH_CONNECTION="); ok {
			// "client port server port": the client's half says who.
			if f := strings.Fields(v); len(f) == 4 {
				in.Client = f[0] + " port " + f[1]
			}
		}
	}
	return in.check("log.json")
}

// parseLegacy reads the log file sudo has always written: a line of
// time:user:runas_user:runas_group:tty:lines:cols, then the working
// directory, then the command line.
func (in *Info) parseLegacy(b []byte) error {
	lines := strings.SplitN(string(b), "\n", 4)
	if len(lines) < 3 {
		return errors.New("recording: the log file has fewer than its three lines (times and users, directory, command)")
	}
	f := strings.Split(lines[0], ":")
	if len(f) != 7 {
		return fmt.Errorf("recording: the first line of the log file has %d colon-separated fields, not 7 (time:user:runas:group:tty:lines:cols)", len(f))
	}
	secs, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || secs <= 0 || secs > 1<<40 {
		return fmt.Errorf("recording: the log file's start time %.30q is not seconds since 1970", f[0])
	}
	rows, err1 := strconv.Atoi(f[5])
	cols, err2 := strconv.Atoi(f[6])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("recording: the log file's terminal size %.20q x %.20q is not two numbers", f[5], f[6])
	}
	argv := strings.Fields(lines[2])
	*in = Info{SubmitUser: f[1], User: f[2], Start: time.Unix(secs, 0).UTC(), TTY: f[4], Rows: rows, Cols: cols, Cwd: lines[1], Argv: argv}
	if len(argv) > 0 {
		in.Command = argv[0]
	}
	// The legacy file joins arguments with spaces, so what the person
	// asked for is everything after the session program.
	if rest, ok := strings.CutPrefix(lines[2], SessionProgram); ok {
		in.Argv = []string{SessionProgram, strings.TrimPrefix(rest, " ")}
	}
	if len(in.Argv) > maxArgs {
		return fmt.Errorf("recording: the log file's command has more than %d arguments", maxArgs)
	}
	return in.check("log")
}

func (in *Info) check(file string) error {
	if in.User == "" {
		return fmt.Errorf("recording: %s names no user the session ran as", file)
	}
	for _, s := range []string{in.User, in.SubmitUser, in.Host, in.TTY} {
		if len(s) > 256 || !utf8.ValidString(s) || strings.ContainsAny(s, "\x00\n\r\x1b") {
			return fmt.Errorf("recording: %s holds a user, host or terminal name %.40q that sudo would not write", file, s)
		}
	}
	if in.Rows < 0 || in.Cols < 0 || in.Rows > maxTerminalDim || in.Cols > maxTerminalDim {
		return fmt.Errorf("recording: %s says the terminal was %d x %d: not a terminal size", file, in.Cols, in.Rows)
	}
	return nil
}

// Events reads the session's events from the timing file and the streams.
// Close the returned reader when done.
func (l *Log) Events() (*LogEvents, error) {
	if l.Info.EventLog {
		f, err := l.fsys.Open(collect.EventsFile)
		if err != nil {
			return nil, fmt.Errorf("recording: opening %s: %w", collect.EventsFile, err)
		}
		return &LogEvents{events: bufio.NewReaderSize(f, 64<<10), start: l.Info.Start, closers: []io.Closer{f}}, nil
	}
	tf, err := l.fsys.Open("timing")
	if err != nil {
		return nil, fmt.Errorf("recording: opening the timing file: %w", err)
	}
	tr, err := decompressed(tf, "timing")
	if err != nil {
		tf.Close()
		return nil, err
	}
	return &LogEvents{fsys: l.fsys, timing: bufio.NewReaderSize(tr, maxTimingLine*4), closers: []io.Closer{tf}}, nil
}

// LogEvents reads a sudo I/O log's events in order.
type LogEvents struct {
	fsys    fs.FS
	timing  *bufio.Reader
	line    int
	at      time.Duration
	streams [5]io.Reader
	read    [5]int64
	closers []io.Closer
	buf     []byte
	// events reads a Windows event session's lines, from start.
	events *bufio.Reader
	start  time.Time
}

var streamFiles = [5]string{"stdin", "stdout", "stderr", "ttyin", "ttyout"}

// Close closes the files the events were read from.
func (e *LogEvents) Close() error {
	var err error
	for _, c := range e.closers {
		err = errors.Join(err, c.Close())
	}
	e.closers = nil
	return err
}

// Next returns the next event, or io.EOF after the last.
func (e *LogEvents) Next() (Event, error) {
	if e.events != nil {
		return e.nextEvent()
	}
	line, err := e.readLine()
	if err != nil {
		return Event{}, err
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return Event{}, e.errf("%.60q is not an event (a type, a delay, then the type's data)", line)
	}
	kind, err := strconv.Atoi(f[0])
	if err != nil || kind < 0 || kind > int(Suspend) {
		return Event{}, e.errf("event type %.20q is not one sudo writes (0 to 7)", f[0])
	}
	delay, err := parseDelay(f[1])
	if err != nil {
		return Event{}, e.errf("%v", err)
	}
	e.at += delay
	if e.at > maxDelay {
		return Event{}, e.errf("the session would last past %v: the timing file is damaged or forged", maxDelay)
	}
	ev := Event{At: e.at, Kind: Kind(kind)}
	switch ev.Kind {
	case Resize:
		if len(f) != 4 {
			return Event{}, e.errf("a window change has its lines and columns after the delay, not %d fields", len(f)-2)
		}
		rows, err1 := strconv.Atoi(f[2])
		cols, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || rows < 0 || cols < 0 || rows > maxTerminalDim || cols > maxTerminalDim {
			return Event{}, e.errf("window size %.20q x %.20q is not a terminal size", f[3], f[2])
		}
		ev.Rows, ev.Cols = rows, cols
		return ev, nil
	case Suspend:
		if len(f) != 3 || len(f[2]) > 16 {
			return Event{}, e.errf("a suspend or resume has one signal name after the delay")
		}
		ev.Signal = f[2]
		return ev, nil
	case 6:
		ev.Kind = TTYOut
	}
	if len(f) != 3 {
		return Event{}, e.errf("a %s event has its byte count after the delay, not %d fields", ev.Kind, len(f)-2)
	}
	n, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || n < 0 || n > maxEventBytes {
		return Event{}, e.errf("%s byte count %.20q is not 0 to %d", ev.Kind, f[2], maxEventBytes)
	}
	s, err := e.stream(ev.Kind)
	if err != nil {
		return Event{}, err
	}
	if cap(e.buf) < int(n) {
		e.buf = make([]byte, n)
	}
	ev.Data = e.buf[:n]
	if got, err := io.ReadFull(s, ev.Data); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return Event{}, e.errf("the timing file says %s holds at least %d bytes, but it ends after %d: the recording was cut short or altered", streamFiles[ev.Kind], e.read[ev.Kind]+n, e.read[ev.Kind]+int64(got))
		}
		return Event{}, fmt.Errorf("recording: reading %s: %w", streamFiles[ev.Kind], err)
	}
	e.read[ev.Kind] += n
	return ev, nil
}

func (e *LogEvents) errf(format string, args ...any) error {
	return fmt.Errorf("recording: timing line %d: %s", e.line, fmt.Sprintf(format, args...))
}

// readLine reads one line of the timing file, bounded: sudo's lines are
// a few dozen bytes.
func (e *LogEvents) readLine() (string, error) {
	e.line++
	var b []byte
	for {
		chunk, err := e.timing.ReadSlice('\n')
		b = append(b, chunk...)
		if len(b) > maxTimingLine {
			return "", e.errf("longer than %d bytes: this is not sudo's timing file", maxTimingLine)
		}
		if err == nil {
			return string(bytes.TrimRight(b, "\r\n")), nil
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(bytes.TrimSpace(b)) == 0 {
				return "", io.EOF
			}
			// A last line without its newline: sudo was stopped while
			// writing; keep what is whole.
			return string(b), nil
		}
		return "", fmt.Errorf("recording: reading the timing file: %w", err)
	}
}

func (e *LogEvents) stream(k Kind) (io.Reader, error) {
	if e.streams[k] != nil {
		return e.streams[k], nil
	}
	f, err := e.fsys.Open(streamFiles[k])
	if err != nil {
		return nil, e.errf("a %s event, but the recording has no %s file (%v)", k, streamFiles[k], err)
	}
	e.closers = append(e.closers, f)
	r, err := decompressed(f, streamFiles[k])
	if err != nil {
		return nil, err
	}
	e.streams[k] = r
	return r, nil
}

// parseDelay reads sudo's delay, seconds with up to nine decimals (older
// sudo wrote the recording host's decimal point, which may be a comma).
func parseDelay(s string) (time.Duration, error) {
	whole, frac, _ := strings.Cut(strings.Replace(s, ",", ".", 1), ".")
	if whole == "" || len(whole) > 12 || len(frac) > 9 || strings.Trim(whole+frac, "0123456789") != "" {
		return 0, fmt.Errorf("delay %.30q is not seconds with up to nine decimals", s)
	}
	secs, _ := strconv.ParseInt(whole, 10, 64)
	ns := int64(0)
	if frac != "" {
		ns, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	if secs > int64(maxDelay/time.Second) || secs > math.MaxInt64/int64(time.Second) {
		return 0, fmt.Errorf("delay %.30q is longer than a recording can be", s)
	}
	return time.Duration(secs)*time.Second + time.Duration(ns), nil
}
