package ssmsession

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Session types of shell sessions, as the agent announces them in the
// handshake: the default shell document (SSM-SessionManagerRunShell),
// AWS-StartInteractiveCommand and AWS-StartNonInteractiveCommand. All three
// carry terminal bytes in Output messages both ways; the client sends its
// terminal's size in Size messages.
const (
	ShellSession           = "Standard_Stream"
	InteractiveCommands    = "InteractiveCommands"
	NonInteractiveCommands = "NonInteractiveCommands"
)

// IsShell reports whether a session type is one of the shell types.
func IsShell(sessionType string) bool {
	return sessionType == ShellSession || sessionType == InteractiveCommands || sessionType == NonInteractiveCommands
}

// ShellRequest is what an agent asks its host to start for a shell
// session.
type ShellRequest struct {
	// Command is run by sh -c; empty starts a shell.
	Command string
	// Terminal gives the process a pseudo-terminal (shells and interactive
	// commands); without one it gets pipes, and stderr apart from stdout.
	Terminal   bool
	Cols, Rows int // the terminal's size; 0 leaves the host's default
}

// Process is a shell session's process on its host.
type Process interface {
	// Write feeds the process's input (the terminal, or stdin).
	Write(p []byte) (int, error)
	// Stdout is the terminal's output, or stdout; Stderr is stderr, nil
	// with a terminal. Both end with io.EOF when the process has ended.
	Stdout() io.Reader
	Stderr() io.Reader
	// Resize sets the terminal's size.
	Resize(cols, rows int) error
	// Wait waits for the process to end and returns its exit code.
	Wait() (int, error)
	// Kill ends the process and everything it started.
	Kill() error
}

// sizeData is a Size message's payload.
type sizeData struct {
	Cols uint32 `json:"cols"`
	Rows uint32 `json:"rows"`
}

// errShellExited ends a shell session whose process exited: the agent then
// closes the channel with an empty output, which the plugin shows as
// "Exiting session with sessionId".
var errShellExited = errors.New("ssmsession: the session's process exited")

// outputGrace is how long the agent waits, once the process has exited,
// for a background child to let go of its output.
const shellOutputGrace = 2 * time.Second

// serveShell runs the session's process and joins it to the channel:
// input and Size messages in, output out, until the process exits or the
// client terminates the session.
func (a *Agent) serveShell(ctx context.Context) error {
	if a.cfg.Shell == nil {
		return fmt.Errorf("session %s: this agent cannot start %s sessions", a.cfg.SessionID, a.cfg.Session.SessionType)
	}
	req := ShellRequest{Command: a.cfg.Command, Terminal: a.cfg.Session.SessionType != NonInteractiveCommands}
	var early [][]byte
	if req.Terminal {
		// Clients send their terminal's size as soon as the session is
		// up; a command that asks for it at once (stty size, a full-screen
		// program) must see it, so the terminal is made that size. Input
		// typed meanwhile is kept for the process.
		early = a.awaitSize(&req)
	}
	p, err := a.cfg.Shell(ctx, req)
	if err != nil {
		return fmt.Errorf("Unable to start command: %v", err)
	}
	defer p.Kill()
	for _, b := range early {
		p.Write(b)
	}

	separate := a.cfg.Session.SessionType == NonInteractiveCommands && a.cfg.SeparateOutput
	var copies sync.WaitGroup
	copyOut := func(r io.Reader, pt PayloadType) {
		defer copies.Done()
		buf := make([]byte, chunkSize)
		for {
			n, err := r.Read(buf)
			if n > 0 && a.ch.send(pt, buf[:n]) != nil {
				return
			}
			if err != nil {
				return
			}
		}
	}
	copies.Add(1)
	go copyOut(p.Stdout(), Output)
	if r := p.Stderr(); r != nil {
		pt := Output
		if separate {
			pt = StdErr
		}
		copies.Add(1)
		go copyOut(r, pt)
	}

	ended := make(chan error, 1)
	go func() {
		for {
			m, err := a.ch.recv()
			if err != nil {
				ended <- err
				return
			}
			switch m.PayloadType {
			case Output:
				if _, err := p.Write(m.Payload); err != nil {
					continue // the process has closed its input; its exit ends the session
				}
			case Size:
				var sd sizeData
				if json.Unmarshal(m.Payload, &sd) == nil && sd.Cols > 0 && sd.Rows > 0 && sd.Cols < 1<<16 && sd.Rows < 1<<16 {
					p.Resize(int(sd.Cols), int(sd.Rows))
				}
			case Flag:
				if f, err := parseFlag(m.Payload); err == nil && f == TerminateSession {
					ended <- errClientEnded
					return
				}
			}
		}
	}()
	exited := make(chan int, 1)
	go func() {
		code, _ := p.Wait()
		exited <- code
	}()

	select {
	case err := <-ended:
		return err
	case code := <-exited:
		done := make(chan struct{})
		go func() { copies.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(shellOutputGrace):
		}
		if separate {
			if err := a.ch.send(ExitCode, []byte(strconv.Itoa(code))); err != nil {
				return err
			}
		}
		a.ch.flush(30 * time.Second)
		return errShellExited
	}
}

// firstSizeWait bounds how long a terminal session's process waits for the
// client's first Size message. A client on a terminal sends its size before
// anything it types, so the wait ends at once for it; one driven by a script
// sends input (or nothing) and gets the host's default size: its first
// input ends the wait too. The bound is generous because a client on a busy
// machine may take seconds to send its first message, and a command that
// reads the terminal's size at its start (stty size, a full-screen program)
// would otherwise see 0x0.
const firstSizeWait = 10 * time.Second

// awaitSize reads until the client's first Size message, its first input,
// or firstSizeWait passes, sets req's size from a Size message, and returns
// the input that came first.
func (a *Agent) awaitSize(req *ShellRequest) [][]byte {
	var early [][]byte
	deadline := time.Now().Add(firstSizeWait)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return early
		}
		m, err := a.ch.recvTimeout(left)
		if err != nil {
			return early
		}
		switch m.PayloadType {
		case Output:
			// Input before any size: a client without a terminal.
			return append(early, append([]byte(nil), m.Payload...))
		case Size:
			var sd sizeData
			if json.Unmarshal(m.Payload, &sd) == nil && sd.Cols > 0 && sd.Rows > 0 && sd.Cols < 1<<16 && sd.Rows < 1<<16 {
				req.Cols, req.Rows = int(sd.Cols), int(sd.Rows)
				return early
			}
		}
	}
}

// Shell is the client's end of a shell session: the terminal's output (or
// stdout) to read, stderr apart when the agent separates it, and input to
// write. Read and Stderr must both be read while the session runs, as with
// a process's pipes.
type Shell struct {
	s              *Session
	stdout, stderr *io.PipeReader

	mu       sync.Mutex
	exitCode *int
}

// Shell returns the session's terminal, for a shell session (Standard_Stream,
// InteractiveCommands or NonInteractiveCommands). It can be taken once.
func (s *Session) Shell() (*Shell, error) {
	if !IsShell(s.sessionType.SessionType) {
		return nil, fmt.Errorf("ssmsession: this is a %s session, not a shell; use Open or Stream", s.sessionType.SessionType)
	}
	s.streamMu.Lock()
	defer s.streamMu.Unlock()
	if s.streamOut {
		return nil, errors.New("ssmsession: the session's shell was already taken")
	}
	s.streamOut = true
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	sh := &Shell{s: s, stdout: outR, stderr: errR}
	go sh.dispatch(outW, errW)
	return sh, nil
}

// dispatch sorts what the agent sends into the shell's streams until the
// session ends; a session the agent closed ends them with io.EOF.
func (sh *Shell) dispatch(stdout, stderr *io.PipeWriter) {
	for {
		m, err := sh.s.ch.recv()
		if err != nil {
			err = readError(err)
			stdout.CloseWithError(err)
			stderr.CloseWithError(err)
			return
		}
		switch m.PayloadType {
		case Output:
			stdout.Write(m.Payload)
		case StdErr:
			stderr.Write(m.Payload)
		case ExitCode:
			if code, err := strconv.Atoi(strings.TrimSpace(string(m.Payload))); err == nil {
				sh.mu.Lock()
				sh.exitCode = &code
				sh.mu.Unlock()
			}
		}
	}
}

// Read reads the terminal's output, or stdout.
func (sh *Shell) Read(p []byte) (int, error) { return sh.stdout.Read(p) }

// Stderr is stderr of a NonInteractiveCommands session whose agent
// separates it; it only ends otherwise.
func (sh *Shell) Stderr() io.Reader { return sh.stderr }

// Write sends input: keystrokes, or a command's stdin.
func (sh *Shell) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := sh.s.ch.send(Output, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Resize tells the agent the terminal's size.
func (sh *Shell) Resize(cols, rows int) error {
	b, _ := json.Marshal(sizeData{Cols: uint32(cols), Rows: uint32(rows)})
	return sh.s.ch.send(Size, b)
}

// ExitCode is the command's exit code, when the agent sent one (a
// NonInteractiveCommands session with separateOutputStream); ok is false
// otherwise.
func (sh *Shell) ExitCode() (code int, ok bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.exitCode == nil {
		return 0, false
	}
	return *sh.exitCode, true
}
