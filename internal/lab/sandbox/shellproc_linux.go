package sandbox

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// Shell starts a shell session's process on the host as user, as the SSM
// agent does for Session Manager: sh (or sh -c the command) in the user's
// home, on a pseudo-terminal unless the request is for a non-interactive
// command. ssm-user is created on first use; any other user must exist.
func (h *Host) Shell(ctx context.Context, user string, req ssmsession.ShellRequest) (ssmsession.Process, error) {
	q := shellQuery{User: user, Command: req.Command, Terminal: req.Terminal, Cols: req.Cols, Rows: req.Rows}
	c, err := h.connect(ctx, "/shell?"+q.encode())
	if err != nil {
		return nil, err
	}
	p := &shellProcess{conn: c, exit: make(chan struct{})}
	var stderrW *io.PipeWriter
	p.stdout, p.stdoutW = io.Pipe()
	if !req.Terminal {
		p.stderr, stderrW = io.Pipe()
	}
	go p.demux(stderrW)
	return p, nil
}

// shellProcess is the lab's handle on a process a host's agent started.
type shellProcess struct {
	conn    *bufferedConn
	writeMu sync.Mutex

	stdout  *io.PipeReader
	stdoutW *io.PipeWriter
	stderr  *io.PipeReader // nil on a terminal

	exit     chan struct{}
	code     int
	exitErr  error
	killOnce sync.Once
}

var _ ssmsession.Process = (*shellProcess)(nil)

// demux sorts the agent's frames into output, stderr and the exit code.
func (p *shellProcess) demux(stderr *io.PipeWriter) {
	end := func(err error) {
		p.stdoutW.CloseWithError(err)
		if stderr != nil {
			stderr.CloseWithError(err)
		}
	}
	defer close(p.exit)
	for {
		typ, data, err := readShellFrame(p.conn)
		if err != nil {
			p.exitErr = fmt.Errorf("the host's agent went away: %w", err)
			end(p.exitErr)
			return
		}
		switch typ {
		case frameOutput:
			p.stdoutW.Write(data)
		case frameStderr:
			if stderr != nil {
				stderr.Write(data)
			}
		case frameFailed:
			p.exitErr = errors.New(string(data))
			end(p.exitErr)
			return
		case frameExit:
			if len(data) == 4 {
				p.code = int(int32(binary.BigEndian.Uint32(data)))
			}
			end(io.EOF)
			p.conn.Close()
			return
		}
	}
}

func (p *shellProcess) send(typ byte, data []byte) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	return writeShellFrame(p.conn, typ, data)
}

func (p *shellProcess) Write(b []byte) (int, error) {
	for rest := b; len(rest) > 0; {
		n := min(len(rest), maxShellFrame)
		if err := p.send(frameInput, rest[:n]); err != nil {
			return 0, err
		}
		rest = rest[n:]
	}
	return len(b), nil
}

func (p *shellProcess) Stdout() io.Reader { return p.stdout }

func (p *shellProcess) Stderr() io.Reader {
	if p.stderr == nil {
		return nil
	}
	return p.stderr
}

func (p *shellProcess) Resize(cols, rows int) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[:], uint16(cols))
	binary.BigEndian.PutUint16(b[2:], uint16(rows))
	return p.send(frameResize, b[:])
}

func (p *shellProcess) Wait() (int, error) {
	<-p.exit
	return p.code, p.exitErr
}

func (p *shellProcess) Kill() error {
	p.killOnce.Do(func() {
		p.send(frameKill, nil)
		p.conn.Close()
	})
	return nil
}
