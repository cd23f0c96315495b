package sandbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	osuser "os/user"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ssmUser is the account the SSM agent creates, with passwordless sudo, to
// run sessions as when Run As is off.
const ssmUser = "ssm-user"

// handleShell starts a shell session's process in the host, as the SSM
// agent does, and joins it to the caller's connection (see shellwire.go).
func (a *agent) handleShell(w http.ResponseWriter, r *http.Request) {
	q, err := decodeShellQuery(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u, err := a.sessionUser(q.User)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 OK\r\n\r\n"); err != nil {
		return
	}
	sh := &hostShell{conn: conn}
	if err := sh.start(a, u, q); err != nil {
		sh.send(frameFailed, []byte(err.Error()))
		return
	}
	sh.serve(brw.Reader)
}

// sessionUser finds the account a session runs as. ssm-user is made on
// first use, as the agent makes it; any other user must exist, as Run As
// requires.
func (a *agent) sessionUser(name string) (*osuser.User, error) {
	u, err := osuser.Lookup(name)
	if err == nil {
		return u, nil
	}
	if name != ssmUser {
		return nil, fmt.Errorf("Unable to start the session: the Run As user %s does not exist on the instance", name)
	}
	add := exec.Command("useradd", "--create-home", "--shell", "/bin/sh", ssmUser)
	add.Env = []string{"PATH=" + defaultPath}
	out, err := a.runQuietly(add)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %v: %s", ssmUser, err, out)
	}
	sudoers := "# User rules for ssm-user\nssm-user ALL=(ALL) NOPASSWD:ALL\n"
	if err := os.WriteFile("/etc/sudoers.d/ssm-agent-users", []byte(sudoers), 0o440); err != nil {
		return nil, fmt.Errorf("granting %s sudo: %w", ssmUser, err)
	}
	return osuser.Lookup(ssmUser)
}

// runQuietly runs cmd through the reaper and returns its combined output.
func (a *agent) runQuietly(cmd *exec.Cmd) ([]byte, error) {
	var out capped
	cmd.Stdout, cmd.Stderr = &out, &out
	exited, err := a.reaper.start(cmd)
	if err != nil {
		return nil, err
	}
	if ws := <-exited; exitCode(ws) != 0 {
		return out.buf.Bytes(), fmt.Errorf("exit status %d", exitCode(ws))
	}
	return out.buf.Bytes(), nil
}

// hostShell is one session's process and the connection it talks over.
type hostShell struct {
	conn    net.Conn
	writeMu sync.Mutex

	pgid   int
	exited <-chan syscall.WaitStatus
	input  io.WriteCloser // the terminal's master, or stdin
	master *os.File       // nil without a terminal
	output []*os.File     // the terminal's master, or stdout and stderr
}

func (sh *hostShell) send(typ byte, data []byte) error {
	sh.writeMu.Lock()
	defer sh.writeMu.Unlock()
	return writeShellFrame(sh.conn, typ, data)
}

func (sh *hostShell) start(a *agent, u *osuser.User, q shellQuery) error {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.Atoi(id); err == nil {
				groups = append(groups, uint32(g))
			}
		}
	}
	// The agent starts sh, not the user's login shell; with a command, sh
	// runs it.
	cmd := exec.Command("/bin/sh")
	cmd.Args[0] = "sh"
	if q.Command != "" {
		cmd.Args = append(cmd.Args, "-c", q.Command)
	}
	cmd.Dir = u.HomeDir
	if fi, err := os.Stat(u.HomeDir); err != nil || !fi.IsDir() {
		cmd.Dir = "/"
	}
	cmd.Env = []string{"PATH=" + defaultPath, "HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username, "SHELL=/bin/sh"}
	attr := &syscall.SysProcAttr{}
	if uid != 0 {
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
	}
	var childEnds []*os.File
	if q.Terminal {
		master, slave, err := openPTY()
		if err != nil {
			return fmt.Errorf("failed to start pty: %w", err)
		}
		if q.Cols > 0 && q.Rows > 0 {
			resize(master, q.Cols, q.Rows)
		}
		if uid != 0 {
			os.Chown(slave.Name(), uid, -1)
		}
		cmd.Env = append(cmd.Env, "TERM=xterm-256color")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		attr.Setsid, attr.Setctty, attr.Ctty = true, true, 0
		sh.master, sh.input, sh.output = master, master, []*os.File{master}
		childEnds = []*os.File{slave}
	} else {
		inR, inW, err := os.Pipe()
		if err != nil {
			return err
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			return err
		}
		errR, errW, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
		attr.Setpgid = true
		sh.input, sh.output = inW, []*os.File{outR, errR}
		childEnds = []*os.File{inR, outW, errW}
	}
	cmd.SysProcAttr = attr
	exited, err := a.reaper.start(cmd)
	for _, f := range childEnds {
		f.Close()
	}
	if err != nil {
		for _, f := range sh.output {
			f.Close()
		}
		sh.input.Close()
		return fmt.Errorf("failed to start the shell: %w", err)
	}
	sh.pgid, sh.exited = cmd.Process.Pid, exited
	cmd.Process.Release()
	return nil
}

// serve copies the process's output to the lab and the lab's input to the
// process until the process exits (and its output is drained) or the lab
// goes away, which kills it.
func (sh *hostShell) serve(in io.Reader) {
	var copies sync.WaitGroup
	for i, f := range sh.output {
		typ := byte(frameOutput)
		if i == 1 {
			typ = frameStderr
		}
		copies.Add(1)
		go func() {
			defer copies.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := f.Read(buf)
				if n > 0 && sh.send(typ, buf[:n]) != nil {
					return
				}
				if err != nil { // EOF, or EIO once the terminal's last user closed it
					return
				}
			}
		}()
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		for {
			typ, data, err := readShellFrame(in)
			if err != nil {
				return
			}
			switch typ {
			case frameInput:
				sh.input.Write(data)
			case frameResize:
				if len(data) == 4 && sh.master != nil {
					resize(sh.master, int(binary.BigEndian.Uint16(data)), int(binary.BigEndian.Uint16(data[2:])))
				}
			case frameKill:
				return
			}
		}
	}()

	var ws syscall.WaitStatus
	select {
	case ws = <-sh.exited:
	case <-gone:
		syscall.Kill(-sh.pgid, syscall.SIGKILL)
		ws = <-sh.exited
	}
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(outputGrace):
		// A background child keeps the output open: it is the session's,
		// and goes with it.
		syscall.Kill(-sh.pgid, syscall.SIGKILL)
	}
	for _, f := range sh.output {
		f.Close()
	}
	sh.input.Close()
	<-done
	var code [4]byte
	binary.BigEndian.PutUint32(code[:], uint32(int32(exitCode(ws))))
	sh.send(frameExit, code[:])
}

// openPTY opens a new pseudo-terminal pair.
func openPTY() (master, slave *os.File, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	master = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	name := "/dev/pts/" + strconv.Itoa(n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, errors.Join(fmt.Errorf("opening %s", name), err)
	}
	return master, os.NewFile(uintptr(sfd), name), nil
}

func resize(master *os.File, cols, rows int) {
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(cols), Row: uint16(rows)})
}
