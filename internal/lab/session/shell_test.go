package session_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/session"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// openShell starts a shell session (doc "" is StartSession without a
// document) and returns Passport's client end of it.
func (tl *testLab) openShell(t *testing.T, doc string, params map[string][]string) (*ssmsession.Session, *ssmsession.Shell) {
	t.Helper()
	in := &ssmsdk.StartSessionInput{Target: aws.String(tl.Hosts[0].Info().InstanceID), Parameters: params}
	if doc != "" {
		in.DocumentName = aws.String(doc)
	}
	out, err := tl.ssm.StartSession(context.Background(), in)
	if err != nil {
		t.Fatalf("StartSession %q: %v", doc, err)
	}
	s := tl.open(t, out)
	sh, err := s.Shell()
	if err != nil {
		t.Fatal(err)
	}
	return s, sh
}

// readAll reads a shell's output (and stderr) to their end, which comes
// when the agent ends the session.
func readAll(t *testing.T, s *ssmsession.Session, sh *ssmsession.Shell) (stdout, stderr string) {
	t.Helper()
	errc := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(sh.Stderr())
		errc <- string(b)
	}()
	done := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(sh)
		done <- string(b)
	}()
	select {
	case stdout = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the session's output never ended")
	}
	return stdout, <-errc
}

// TestDefaultShell: StartSession with no document opens sh on the host as
// ssm-user (made on first use, with sudo), on a terminal that takes the
// client's size; exit ends the session and the agent says so.
func TestDefaultShell(t *testing.T) {
	tl := startLab(t, 1)
	s, sh := tl.openShell(t, "", nil)
	if s.SessionType().SessionType != ssmsession.ShellSession {
		t.Fatalf("the agent announced %q, want Standard_Stream", s.SessionType().SessionType)
	}
	if err := sh.Resize(123, 45); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(sh, "stty size; id -un; tty; sudo -n id -un; exit\n"); err != nil {
		t.Fatal(err)
	}
	out, _ := readAll(t, s, sh)
	for _, want := range []string{"45 123", "ssm-user", "/dev/pts/", "root"} {
		if !strings.Contains(out, want) {
			t.Errorf("the shell's output lacks %q:\n%s", want, out)
		}
	}
	var closed *ssmsession.ClosedError
	if !errors.As(s.Err(), &closed) || closed.Output != "" {
		t.Errorf("the session ended with %v; want the agent's ChannelClosed with no output, as for an exited shell", s.Err())
	}
}

func TestInteractiveCommand(t *testing.T) {
	tl := startLab(t, 1)
	s, sh := tl.openShell(t, "AWS-StartInteractiveCommand", map[string][]string{"command": {`read line; echo "got $line on $(tty)"`}})
	if s.SessionType().SessionType != ssmsession.InteractiveCommands {
		t.Fatalf("the agent announced %q", s.SessionType().SessionType)
	}
	io.WriteString(sh, "hello\n")
	out, _ := readAll(t, s, sh)
	if !strings.Contains(out, "got hello on /dev/pts/") {
		t.Fatalf("output %q", out)
	}
}

// TestNonInteractiveCommand: no terminal; with separateOutputStream the
// agent sends stderr and the exit code apart.
func TestNonInteractiveCommand(t *testing.T) {
	tl := startLab(t, 1)
	s, sh := tl.openShell(t, "AWS-StartNonInteractiveCommand", map[string][]string{
		"command": {"echo out; echo err >&2; tty || true; exit 3"}, "separateOutputStream": {"true"}})
	out, errOut := readAll(t, s, sh)
	if out != "out\nnot a tty\n" || errOut != "err\n" {
		t.Errorf("stdout %q, stderr %q; want out and not a tty, then err", out, errOut)
	}
	if code, ok := sh.ExitCode(); !ok || code != 3 {
		t.Errorf("exit code %d (sent: %v), want 3", code, ok)
	}

	s, sh = tl.openShell(t, "AWS-StartNonInteractiveCommand", map[string][]string{"command": {"echo out; echo err >&2"}})
	out, errOut = readAll(t, s, sh)
	if !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") || errOut != "" {
		t.Errorf("without separateOutputStream: stdout %q, stderr %q; want both in the output", out, errOut)
	}
	if _, ok := sh.ExitCode(); ok {
		t.Error("an exit code came without separateOutputStream")
	}
}

// TestRunAs: with Run As on in the preferences, a shell runs as the
// principal's SSMSessionRunAs tag or the default user, which must exist.
func TestRunAs(t *testing.T) {
	tl := startLab(t, 1)
	addUser(t, tl.Hosts[0], "granted")
	tl.sessions.SetPreferences(session.Preferences{RunAsEnabled: true, RunAsDefaultUser: "granted"})
	s, sh := tl.openShell(t, "AWS-StartNonInteractiveCommand", map[string][]string{"command": {"id -un; pwd"}})
	if out, _ := readAll(t, s, sh); out != "granted\n/home/granted\n" {
		t.Fatalf("Run As granted: output %q", out)
	}

	tl.sessions.SetPreferences(session.Preferences{RunAsEnabled: true, RunAsDefaultUser: "nobody-here"})
	s, sh = tl.openShell(t, "AWS-StartNonInteractiveCommand", map[string][]string{"command": {"id -un"}})
	readAll(t, s, sh)
	var closed *ssmsession.ClosedError
	if !errors.As(s.Err(), &closed) || !strings.Contains(closed.Output, "nobody-here does not exist") {
		t.Fatalf("Run As a missing user: %v; want the agent to say the user does not exist", s.Err())
	}

	tl.sessions.SetPreferences(session.Preferences{RunAsEnabled: true})
	_, err := tl.ssm.StartSession(context.Background(), &ssmsdk.StartSessionInput{Target: aws.String(tl.Hosts[0].Info().InstanceID)})
	var invalid *types.InvalidDocument
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "runAsDefaultUser") {
		t.Fatalf("Run As with no user to run as: %v; want InvalidDocument naming runAsDefaultUser", err)
	}
}

// TestNoShellOnWindowsModels: the lab's Windows hosts are models without a
// shell; a shell session to one is refused at StartSession, saying so.
func TestNoShellOnWindowsModels(t *testing.T) {
	dir := t.TempDir()
	l, err := lab.Start(context.Background(), lab.Options{Dir: dir, WindowsHosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = ssmsdk.NewFromConfig(l.AWSConfig()).StartSession(context.Background(), &ssmsdk.StartSessionInput{Target: aws.String(l.Windows[0].Info().InstanceID)})
	var invalid *types.InvalidDocument
	if !errors.As(err, &invalid) || !strings.Contains(err.Error(), "no shell") {
		t.Fatalf("a shell on a Windows model: %v; want InvalidDocument saying it has no shell", err)
	}
}
