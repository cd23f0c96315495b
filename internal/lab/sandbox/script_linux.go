package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// maxOutput caps what a script's stdout and stderr each keep; the rest is
// read and dropped so a chatty script never blocks on a full pipe.
const maxOutput = 1 << 20

// outputGrace is how long the agent waits, after the shell has exited, for
// a background child to close the output it inherited.
const outputGrace = time.Second

// plugin is how the SSM agent runs one kind of script document on Linux.
type plugin struct {
	name        string // the plugin's directory name in the orchestration tree
	file        string // the script's file name
	interpreter string
	args        []string // before the script's path
}

var plugins = map[string]plugin{
	"aws:runShellScript": {name: "awsrunShellScript", file: "_script.sh", interpreter: "sh"},
	// The Linux agent runs PowerShell steps with PowerShell Core when it
	// is installed, and fails like this when it is not.
	"aws:runPowerShellScript": {name: "awsrunPowerShellScript", file: "_script.ps1", interpreter: "pwsh", args: []string{"-f"}},
}

// failed is a plugin failure as the agent reports it: exit code 1 and the
// reason on stderr.
func failed(format string, args ...any) runResult {
	return runResult{ExitCode: 1, Stderr: []byte(fmt.Sprintf(format, args...) + "\n")}
}

// run executes one script the way the SSM agent does: written to a file in
// a per-command directory, run as root by the document's interpreter with
// a minimal environment, in its own process group so that a timeout or a
// cancellation kills everything it started.
func (a *agent) run(ctx context.Context, req runRequest) runResult {
	p, ok := plugins[req.Plugin]
	if !ok {
		return failed("document %s is not supported on this Linux instance; run aws:runShellScript steps, as AWS-RunShellScript does", req.Document)
	}
	interpreter, err := exec.LookPath(p.interpreter)
	if err != nil {
		return failed("failed to run commands: exec: %q: executable file not found in $PATH", p.interpreter)
	}
	commandDir := filepath.Join("/var/lib/amazon/ssm", a.cfg.InstanceID, "document/orchestration", newID())
	defer os.RemoveAll(commandDir)
	dir := filepath.Join(commandDir, p.name, "0."+p.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return failed("failed to create the orchestration directory: %v", err)
	}
	script := filepath.Join(dir, p.file)
	if err := os.WriteFile(script, []byte(req.Source), 0o700); err != nil {
		return failed("failed to write the script: %v", err)
	}
	workDir := dir
	if req.WorkingDirectory != "" {
		if fi, err := os.Stat(req.WorkingDirectory); err != nil || !fi.IsDir() {
			return failed("invalid workingDirectory %q: no such directory on the instance", req.WorkingDirectory)
		}
		workDir = req.WorkingDirectory
	}

	cmd := exec.Command(interpreter, append(p.args, script)...)
	cmd.Args[0] = p.interpreter // ps shows "sh _script.sh", as under the agent
	cmd.Dir = workDir
	cmd.Env = []string{
		"PATH=" + defaultPath,
		"HOME=/root",
		"AWS_SSM_INSTANCE_ID=" + a.cfg.InstanceID,
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return failed("%v", err)
	}
	defer stdin.Close()
	cmd.Stdin = stdin
	stdout, stderr := capped{limit: maxOutput}, capped{limit: maxOutput}
	if req.WholeStdout {
		// Bound for S3, as the agent uploads its stdout file whole.
		stdout.limit = node.MaxS3Output
	}
	outDone, err := pipeTo(cmd, &stdout, &stderr)
	if err != nil {
		return failed("%v", err)
	}
	exited, err := a.reaper.start(cmd)
	closeWriters(cmd)
	if err != nil {
		outDone.abandon()
		return failed("failed to run commands: %v", err)
	}
	defer cmd.Process.Release()
	pgid := cmd.Process.Pid

	var timeout <-chan time.Time
	if req.Timeout > 0 {
		t := time.NewTimer(req.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	res := runResult{}
	var ws syscall.WaitStatus
	select {
	case ws = <-exited:
	case <-timeout:
		syscall.Kill(-pgid, syscall.SIGKILL)
		ws = <-exited
		res.TimedOut = true
	case <-ctx.Done():
		syscall.Kill(-pgid, syscall.SIGKILL)
		ws = <-exited
	}
	outDone.wait(outputGrace)
	res.ExitCode = exitCode(ws)
	if res.TimedOut {
		res.ExitCode = -1
	}
	res.Stdout, res.Stderr = stdout.buf.Bytes(), stderr.buf.Bytes()
	return res
}

// capped keeps the first limit bytes written to it (maxOutput when 0) and
// drops the rest.
type capped struct {
	buf   bytes.Buffer
	limit int
}

func (c *capped) Write(p []byte) (int, error) {
	limit := c.limit
	if limit == 0 {
		limit = maxOutput
	}
	if room := limit - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// output is the reading side of a command's stdout and stderr pipes.
type output struct {
	readers []*os.File
	done    chan struct{}
}

// pipeTo gives cmd real pipes for stdout and stderr, copied into the
// writers. exec's own pipes are not used because they are finished by
// Cmd.Wait, which the reaper forbids.
func pipeTo(cmd *exec.Cmd, stdout, stderr io.Writer) (*output, error) {
	o := &output{done: make(chan struct{})}
	var writers []*os.File
	for range 2 {
		r, pw, err := os.Pipe()
		if err != nil {
			for _, f := range append(o.readers, writers...) {
				f.Close()
			}
			return nil, err
		}
		o.readers = append(o.readers, r)
		writers = append(writers, pw)
	}
	cmd.Stdout, cmd.Stderr = writers[0], writers[1]
	copies := make(chan struct{}, 2)
	for i, w := range []io.Writer{stdout, stderr} {
		go func() {
			io.Copy(w, o.readers[i])
			copies <- struct{}{}
		}()
	}
	go func() {
		<-copies
		<-copies
		close(o.done)
	}()
	return o, nil
}

// closeWriters closes this process's copies of the child's output pipes, so
// that the readers see EOF once the child's side is closed too.
func closeWriters(cmd *exec.Cmd) {
	for _, w := range []io.Writer{cmd.Stdout, cmd.Stderr} {
		if f, ok := w.(*os.File); ok {
			f.Close()
		}
	}
}

// wait waits up to grace for the copies to reach EOF, then closes the
// readers so a background process holding the pipes cannot stall the
// result (it gets EPIPE on its next write, as under the real agent).
func (o *output) wait(grace time.Duration) {
	select {
	case <-o.done:
	case <-time.After(grace):
		o.abandon()
		<-o.done
	}
	for _, r := range o.readers {
		r.Close()
	}
}

func (o *output) abandon() {
	for _, r := range o.readers {
		r.Close()
	}
}
