package session_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/crypto/ssh"
)

// pluginPath finds the official session-manager-plugin: the
// SESSION_MANAGER_PLUGIN variable, else PATH.
func pluginPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SESSION_MANAGER_PLUGIN"); p != "" {
		return p
	}
	p, err := exec.LookPath("session-manager-plugin")
	if err != nil {
		t.Skip("the official session-manager-plugin is not installed (set SESSION_MANAGER_PLUGIN or put it on PATH)")
	}
	return p
}

// plugin starts the official plugin the way the AWS CLI does: the
// StartSession response, the region, the operation, a profile, the request
// and the SSM endpoint.
func (tl *testLab) plugin(t *testing.T, path, target, doc string, params map[string][]string) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	out := tl.start(t, target, doc, params)
	resp, _ := json.Marshal(map[string]string{
		"SessionId": aws.ToString(out.SessionId), "StreamUrl": aws.ToString(out.StreamUrl), "TokenValue": aws.ToString(out.TokenValue),
	})
	req, _ := json.Marshal(map[string]any{"Target": target, "DocumentName": doc, "Parameters": params})
	cmd := exec.Command(path, string(resp), tl.Region, "StartSession", "", string(req), tl.Endpoint)
	cmd.Env = append(os.Environ(), tl.Env()...)
	cmd.Env = append(cmd.Env, "HOME="+t.TempDir())
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, stdin, bufio.NewReader(stdout)
}

// pluginPort waits for the plugin to say which local port it opened, and
// keeps reading what it prints: printed has all of it once the plugin
// closes its output.
func pluginPort(t *testing.T, stdout *bufio.Reader) (port string, printed <-chan string) {
	t.Helper()
	portLine := regexp.MustCompile(`Port (\d+) opened`)
	found := make(chan string, 1)
	all := make(chan string, 1)
	go func() {
		var text strings.Builder
		sent := false
		for {
			line, err := stdout.ReadString('\n')
			text.WriteString(line)
			if m := portLine.FindStringSubmatch(line); m != nil && !sent {
				found <- m[1]
				sent = true
			}
			if err != nil {
				if !sent {
					found <- ""
				}
				all <- text.String()
				return
			}
		}
	}()
	select {
	case port = <-found:
	case <-time.After(20 * time.Second):
	}
	if port == "" {
		t.Fatal("the official plugin did not open a local port")
	}
	return port, all
}

// TestOfficialPluginSSH: the official plugin, run as an SSH ProxyCommand
// runs it, carries an SSH login to the host through the lab.
func TestOfficialPluginSSH(t *testing.T) {
	path := pluginPath(t)
	tl := startLab(t, 1)
	h := tl.Hosts[0]
	signer := addUser(t, h, "pluginuser")
	_, stdin, stdout := tl.plugin(t, path, h.Info().InstanceID, "AWS-StartSSHSession", map[string][]string{"portNumber": {"22"}})
	conn := streamConn{struct {
		io.Reader
		io.WriteCloser
	}{stdout, stdin}}
	c, chans, reqs, err := ssh.NewClientConn(conn, "plugin", &ssh.ClientConfig{
		User: "pluginuser", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 20 * time.Second,
	})
	if err != nil {
		t.Fatalf("SSH login through the official plugin: %v", err)
	}
	client := ssh.NewClient(c, chans, reqs)
	defer client.Close()
	sess, err := client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	got, err := sess.Output("id -un")
	if err != nil || string(got) != "pluginuser\n" {
		t.Fatalf("id -un through the official plugin: %q, %v", got, err)
	}
}

// TestOfficialPluginPortForwarding: the official plugin opens a local port
// for a port-forwarding session (multiplexed with smux) and connections
// through it reach the host's sshd.
func TestOfficialPluginPortForwarding(t *testing.T) {
	path := pluginPath(t)
	tl := startLab(t, 1)
	_, _, stdout := tl.plugin(t, path, tl.Hosts[0].Info().InstanceID, "AWS-StartPortForwardingSession",
		map[string][]string{"portNumber": {"22"}, "localPortNumber": {"0"}})
	port, _ := pluginPort(t, stdout)
	for i := range 5 {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(time.Minute))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "SSH-2.0-OpenSSH") {
			t.Fatalf("connection %d through the plugin: %q, %v", i, line, err)
		}
	}
}

// TestOfficialPluginIdlePortForwarding: a port-forwarding session through
// the official plugin idles past the agent's smux keep-alive window. A
// plugin whose version tells the agent to keep keep-alives on while its own
// are off (one built from source reports 1.2.0.0) has its session ended by
// the agent, as on AWS; either way the session stays up or the plugin is
// told and exits, never left holding a session that is gone.
func TestOfficialPluginIdlePortForwarding(t *testing.T) {
	path := pluginPath(t)
	tl := startLab(t, 1)
	const window = time.Second
	tl.sessions.SetMuxKeepAlive(window)
	cmd, _, stdout := tl.plugin(t, path, tl.Hosts[0].Info().InstanceID, "AWS-StartPortForwardingSession",
		map[string][]string{"portNumber": {"22"}, "localPortNumber": {"0"}})
	port, printed := pluginPort(t, stdout)
	banner := func() error {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		line, err := bufio.NewReader(c).ReadString('\n')
		if !strings.HasPrefix(line, "SSH-2.0-OpenSSH") {
			return fmt.Errorf("read %q, %v", line, err)
		}
		return nil
	}
	if err := banner(); err != nil {
		t.Fatalf("before the idle spell: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Idle for five keep-alive windows: the wait is the scenario.
	select {
	case <-exited:
		out := <-printed
		if !strings.Contains(out, "keep-alive") {
			t.Fatalf("the plugin exited without saying why the session ended:\n%s", out)
		}
		t.Logf("the agent ended the idle session and the plugin was told:\n%s", out)
		return
	case <-time.After(5 * window):
	}
	if err := banner(); err != nil {
		t.Fatalf("the plugin is still running but its session no longer carries connections: %v", err)
	}
}

// TestOfficialPluginShell: the official plugin opens the default shell and
// a non-interactive command through the lab, shows their output, and exits
// when the agent ends the session.
func TestOfficialPluginShell(t *testing.T) {
	path := pluginPath(t)
	tl := startLab(t, 1)
	target := tl.Hosts[0].Info().InstanceID
	for _, tt := range []struct {
		name, doc string
		params    map[string][]string
		input     string
		want      string
	}{
		{"default shell", "SSM-SessionManagerRunShell", nil, "echo shell-$((40+2)) as $(id -un); exit\n", "shell-42 as ssm-user"},
		{"non-interactive command", "AWS-StartNonInteractiveCommand", map[string][]string{"command": {"echo command-$((6*7))"}}, "", "command-42"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd, stdin, stdout := tl.plugin(t, path, target, tt.doc, tt.params)
			io.WriteString(stdin, tt.input)
			out := make(chan string, 1)
			go func() {
				b, _ := io.ReadAll(stdout)
				out <- string(b)
			}()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case <-exited:
			case <-time.After(60 * time.Second):
				t.Fatal("the plugin did not exit when the session ended")
			}
			got := <-out
			if !strings.Contains(got, tt.want) || !strings.Contains(got, "Exiting session with sessionId") {
				t.Fatalf("the plugin printed:\n%s\nwant %q and the end of the session", got, tt.want)
			}
		})
	}
}
