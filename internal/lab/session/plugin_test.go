package session_test

import (
	"bufio"
	"encoding/json"
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
	portLine := regexp.MustCompile(`Port (\d+) opened`)
	found := make(chan string, 1)
	go func() {
		for {
			line, err := stdout.ReadString('\n')
			if m := portLine.FindStringSubmatch(line); m != nil {
				found <- m[1]
				io.Copy(io.Discard, stdout)
				return
			}
			if err != nil {
				found <- ""
				return
			}
		}
	}()
	var port string
	select {
	case port = <-found:
	case <-time.After(20 * time.Second):
	}
	if port == "" {
		t.Fatal("the official plugin did not open a local port")
	}
	for i := range 5 {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if !strings.HasPrefix(line, "SSH-2.0-OpenSSH") {
			t.Fatalf("connection %d through the plugin: %q, %v", i, line, err)
		}
	}
}
