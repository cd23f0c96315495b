package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// sshdLog is where the host's sshd writes its log (sshd -e), in place of
// the journal a real host would have.
const sshdLog = "/var/log/sshd.log"

// superviseSSHD keeps the distribution's sshd running as systemd's
// Restart=on-failure would: a dead sshd is started again, with a growing
// pause while it keeps dying at once (a broken config must not spin).
func (a *agent) superviseSSHD() {
	const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
	pause := minPause
	for {
		started := time.Now()
		exit := a.runSSHD()
		a.mu.Lock()
		a.sshd.PID = 0
		a.sshd.LastExit = exit
		a.mu.Unlock()
		if time.Since(started) > 10*time.Second {
			pause = minPause
		}
		time.Sleep(pause)
		pause = min(2*pause, maxPause)
	}
}

// runSSHD runs sshd until it exits and says how it ended, with the end of
// its own output.
func (a *agent) runSSHD() string {
	log, err := os.OpenFile(sshdLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Sprintf("cannot open %s: %v", sshdLog, err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		log.Close()
		return err.Error()
	}
	// The distribution's sshd_config stays as shipped (its Include of
	// sshd_config.d, UsePAM yes); only where to listen comes from the command
	// line, which sshd keeps across a SIGHUP re-exec and which takes
	// precedence over the files.
	cmd := exec.Command(sshdPath, "-D", "-e",
		"-o", "ListenAddress="+a.cfg.sshAddr(),
		"-o", "PidFile=/run/sshd.pid")
	cmd.Env = []string{"PATH=" + defaultPath}
	cmd.Stdout, cmd.Stderr = pw, pw
	done, err := a.reaper.start(cmd)
	pw.Close()
	if err != nil {
		pr.Close()
		log.Close()
		return fmt.Sprintf("cannot start %s: %v", sshdPath, err)
	}
	a.mu.Lock()
	a.sshd.PID = cmd.Process.Pid
	a.sshd.Starts++
	a.mu.Unlock()
	appendLog("started %s as pid %d", sshdPath, cmd.Process.Pid)

	last := &tail{max: 2048}
	copied := make(chan struct{})
	// The copy owns the pipe and the log: closing them early would break
	// the sessions still writing their log lines to them.
	go func() {
		io.Copy(io.MultiWriter(log, last), pr)
		pr.Close()
		log.Close()
		close(copied)
	}()
	ws := <-done
	cmd.Process.Release()
	// Session processes inherit sshd's stderr and may keep the pipe open
	// long after the listener died; its last words are in the pipe already.
	select {
	case <-copied:
	case <-time.After(200 * time.Millisecond):
	}
	how := fmt.Sprintf("sshd exited with status %d", exitCode(ws))
	if ws.Signaled() {
		how = fmt.Sprintf("sshd was killed by %v", ws.Signal())
	}
	appendLog("%s", how)
	if out := last.String(); out != "" {
		how += ": " + out
	}
	return how
}

// appendLog adds the init's own note to sshd's log.
func appendLog(format string, args ...any) {
	f, err := os.OpenFile(sshdLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s: %s\n", time.Now().UTC().Format(time.RFC3339), initName, fmt.Sprintf(format, args...))
}
