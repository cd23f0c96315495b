package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/access"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
)

// These tests run the connect commands as a person would: a lab with
// sandbox hosts running a real sshd, a grant issued by the access core, the
// request imported from Terraform's JSON, and OpenSSH's ssh, scp and rsync
// through the Session Manager tunnel.

type connectLab struct {
	*lab.Lab
	grant     *access.Grant
	configDir string
}

// startConnectLab starts a lab with hosts, grants access to all of them,
// and imports the grant into a fresh Passport config directory that this
// test's passport processes use.
func startConnectLab(t *testing.T, hosts int) *connectLab {
	t.Helper()
	return startConnectLabWith(t, lab.Options{Hosts: hosts})
}

// startConnectLabWith is startConnectLab for the sandbox and Windows hosts
// opts asks for; the grant covers all of them.
func startConnectLabWith(t *testing.T, opts lab.Options) *connectLab {
	t.Helper()
	if opts.Hosts > 0 {
		if err := sandbox.Available(); err != nil {
			t.Skip(err)
		}
		if testing.Short() {
			t.Skip("-short: sandbox host tests take tens of seconds")
		}
		for _, tool := range []string{"ssh", "scp", "rsync"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s is not installed: the connect tests run OpenSSH's client", tool)
			}
		}
	}
	// Short: host agent sockets live under it (107-byte limit).
	dir, err := os.MkdirTemp("", "cl")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.Dir = dir
	l, err := lab.Start(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for _, kv := range l.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	cl := &connectLab{Lab: l, configDir: t.TempDir()}
	t.Setenv("PASSPORT_CONFIG_DIR", cl.configDir)

	client := ssmsdk.NewFromConfig(l.AWSConfig())
	svc, err := access.New(access.Config{Fleet: fleet.New(client, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond})})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := sshca.Generate(sshca.Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range l.Hosts {
		ids = append(ids, h.Info().InstanceID)
	}
	for _, h := range l.Windows {
		ids = append(ids, h.Info().InstanceID)
	}
	cl.grant, err = svc.Grant(ctx, access.Request{
		Reason:    "check the connect commands end to end",
		Targets:   ids,
		Duration:  time.Hour,
		CA:        ca,
		Requester: "arn:aws:iam::123456789012:user/alice",
	})
	if err != nil {
		t.Fatal(err)
	}
	cl.importState(t, terraformShow(t, cl.grant))
	return cl
}

// terraformShow renders grants the way `terraform show -json` prints
// passport_access_request resources.
func terraformShow(t *testing.T, grants ...*access.Grant) []byte {
	t.Helper()
	var resources []any
	for i, g := range grants {
		status, addrs, platforms := map[string]string{}, map[string]string{}, map[string]string{}
		for _, tg := range g.Targets {
			status[tg.InstanceID], addrs[tg.InstanceID], platforms[tg.InstanceID] = string(tg.Status), tg.Address, tg.Platform
		}
		var key any
		if g.PrivateKey != "" {
			key = g.PrivateKey
		}
		resources = append(resources, map[string]any{
			"address": fmt.Sprintf("passport_access_request.r%d", i), "mode": "managed",
			"type": "passport_access_request", "name": fmt.Sprintf("r%d", i),
			"values": map[string]any{
				"id": g.ID, "username": g.Username, "expires_at": g.ExpiresAt.UTC().Format(time.RFC3339),
				"certificate": g.Certificate, "private_key": key,
				"target_status": status, "target_addresses": addrs,
				"target_platforms": platforms, "passwords": g.Passwords,
			},
		})
	}
	b, err := json.Marshal(map[string]any{
		"format_version": "1.0",
		"values":         map[string]any{"root_module": map[string]any{"resources": resources}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (cl *connectLab) importState(t *testing.T, state []byte) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "show.json")
	if err := os.WriteFile(f, state, 0o600); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, err := passportRun(t, "request", "import", f); err != nil {
		t.Fatalf("request import: %v\n%s%s", err, stdout, stderr)
	}
}

// openssh runs an OpenSSH tool whose ProxyCommand is this test binary
// standing in for passport.
func openssh(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func TestConnectThroughSessionManager(t *testing.T) {
	cl := startConnectLab(t, 2)
	host, other := cl.Hosts[0], cl.Hosts[1]
	id, name := host.Info().InstanceID, host.Info().ComputerName

	t.Run("ssh runs a command as the short-lived user", func(t *testing.T) {
		for _, target := range []string{id, name} {
			stdout, stderr, err := passportRun(t, "ssh", target, "--", "id", "-un")
			if err != nil {
				t.Fatalf("passport ssh %s -- id -un: %v\n%s", target, err, stderr)
			}
			if got := strings.TrimSpace(stdout); got != cl.grant.Username {
				t.Errorf("passport ssh %s -- id -un printed %q, want %q", target, got, cl.grant.Username)
			}
		}
		// Each ssh's proxy ends its session with TerminateSession when
		// OpenSSH is done with it (OpenSSH does not wait for that).
		cl.waitTerminated(t, 2)
		// Debian's ssh_config hashes host names, so ask ssh-keygen.
		known := filepath.Join(cl.configDir, "requests", "known_hosts")
		if out, err := exec.Command("ssh-keygen", "-F", id, "-f", known).CombinedOutput(); err != nil {
			t.Errorf("Passport's known_hosts does not record %s by instance id: %v %s", id, err, out)
		}
		key, err := os.Stat(filepath.Join(cl.configDir, "requests", cl.grant.ID, "key"))
		if err != nil || key.Mode().Perm() != 0o600 {
			t.Errorf("the imported private key: %v, mode %v; want 0600", err, key.Mode())
		}
	})

	t.Run("scp and rsync through ssh-config", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "ssh_config")
		if stdout, stderr, err := passportRun(t, "ssh-config", "-o", cfg); err != nil {
			t.Fatalf("ssh-config: %v\n%s%s", err, stdout, stderr)
		}
		payload := make([]byte, 3<<20)
		rand.Read(payload)
		src := filepath.Join(t.TempDir(), "payload")
		if err := os.WriteFile(src, payload, 0o600); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%x", sha256.Sum256(payload))
		openssh(t, "scp", "-F", cfg, src, name+":by-scp")
		openssh(t, "rsync", "-e", "ssh -F "+cfg, src, id+":by-rsync")
		for _, copy := range []string{"by-scp", "by-rsync"} {
			res, err := host.Run(context.Background(), node.Script{
				Document: fleet.ShellScript, Timeout: time.Minute,
				Source: "sha256sum /home/" + cl.grant.Username + "/" + copy,
			})
			if err != nil || res.ExitCode != 0 {
				t.Fatalf("reading %s on the host: %v %s", copy, err, res.Stderr)
			}
			if got := strings.Fields(string(res.Stdout)); len(got) == 0 || got[0] != want {
				t.Errorf("%s on the host has sha256 %v, want %s", copy, got, want)
			}
		}
		// The other host is reachable by its alias too.
		if got := strings.TrimSpace(openssh(t, "ssh", "-F", cfg, other.Info().ComputerName, "hostname")); got != other.Info().ComputerName {
			t.Errorf("ssh -F to %s ran on %q", other.Info().ComputerName, got)
		}
	})

	t.Run("tunnel carries 50 concurrent connections over one session", func(t *testing.T) {
		// sshd turns away more than 10 unauthenticated connections at
		// once (MaxStartups), so the host's port is an echo server's, on
		// the host's own address: only the host's agent dials it.
		port := echoServer(t, host.Info().IPAddress)
		cmd, stdout, stderr := passport(t, "tunnel", id, "--remote-port", port)
		addr := waitFor(t, stdout, stderr, regexp.MustCompile(`Forwarding (127\.0\.0\.1:\d+) to`))
		var wg sync.WaitGroup
		errs := make(chan error, 50)
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- echo(addr)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		before := cl.Server.Calls()["AmazonSSM.TerminateSession"]
		interrupt(t, cmd, stderr)
		if n := cl.Server.Calls()["AmazonSSM.TerminateSession"]; n != before+1 {
			t.Errorf("Ctrl-C made %d TerminateSession calls, want 1", n-before)
		}
	})

	t.Run("proxy joins stdin and stdout to a port and ends on SIGHUP", func(t *testing.T) {
		port := echoServer(t, host.Info().IPAddress)
		before := cl.Server.Calls()["AmazonSSM.TerminateSession"]
		cmd := exec.Command(os.Args[0], "proxy", name, port)
		cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
		cmd.Stdin = strings.NewReader("through the proxy\n")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "through the proxy\n" {
			t.Fatalf("the echo through passport proxy: %q %v", line, err)
		}
		// OpenSSH ends its ProxyCommand with SIGHUP.
		cmd.Process.Signal(syscall.SIGHUP)
		if err := cmd.Wait(); err != nil {
			t.Errorf("passport proxy after SIGHUP: %v\n%s", err, stderr.String())
		}
		if n := cl.Server.Calls()["AmazonSSM.TerminateSession"]; n != before+1 {
			t.Errorf("SIGHUP made %d TerminateSession calls, want 1", n-before)
		}
	})

	t.Run("rdp to a Linux target prints how to log in and says it has no password", func(t *testing.T) {
		cmd, stdout, stderr := passport(t, "rdp", name)
		waitFor(t, stdout, stderr, regexp.MustCompile(`(Press Ctrl-C)`))
		for _, want := range []string{"Host:     127.0.0.1", "User:     " + cl.grant.Username, "Password: none: " + cl.grant.Targets[0].InstanceID + " is a Linux target of access request " + cl.grant.ID} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("passport rdp printed\n%s\nwithout %q", stdout, want)
			}
		}
		interrupt(t, cmd, stderr)
	})

	t.Run("errors", func(t *testing.T) {
		expired := *cl.grant
		expired.ID = "ar-00000000000000e1"
		expired.ExpiresAt = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
		expired.Targets = []access.Target{{InstanceID: "i-0e0e0e0e0e0e0e0e0", Status: access.Active}}
		cl.importState(t, terraformShow(t, &expired))

		if err := other.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			args []string
			want string
		}{
			{"expired request", []string{"ssh", "i-0e0e0e0e0e0e0e0e0", "true"}, "expired at " + expired.ExpiresAt.Format(time.RFC3339)},
			{"unknown target", []string{"ssh", "i-0123456789abcdef0", "true"}, `covers "i-0123456789abcdef0"`},
			{"unknown name", []string{"tunnel", "db-9", "--remote-port", "5432"}, `covers "db-9"`},
			{"stopped host over ssh", []string{"ssh", other.Info().InstanceID, "true"}, other.Info().InstanceID + " is offline"},
			{"stopped host over a tunnel", []string{"tunnel", other.Info().InstanceID, "--remote-port", "22"}, "is offline"},
			{"tunnel without a port", []string{"tunnel", id}, "--remote-port is required"},
		} {
			t.Run(c.name, func(t *testing.T) {
				// A command that hung instead would be killed by
				// passportRun's deadline and say nothing of the kind.
				_, stderr, err := passportRun(t, c.args...)
				if err == nil {
					t.Fatalf("passport %s succeeded", strings.Join(c.args, " "))
				}
				if !strings.Contains(stderr, c.want) {
					t.Errorf("passport %s said %q, want it to say %q", strings.Join(c.args, " "), stderr, c.want)
				}
			})
		}
	})
}

// waitTerminated waits until the lab has seen n TerminateSession calls.
func (cl *connectLab) waitTerminated(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for cl.Server.Calls()["AmazonSSM.TerminateSession"] < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d TerminateSession calls, want %d: a session was left open", cl.Server.Calls()["AmazonSSM.TerminateSession"], n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// echoServer listens on a port of address and echoes every connection
// until the test ends; it returns the port.
func echoServer(t *testing.T, address string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(address, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// echo sends 256 KiB of random bytes through the tunnel at addr and wants
// them back unchanged.
func echo(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	sent := make([]byte, 256<<10)
	rand.Read(sent)
	go c.Write(sent)
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("reading the echo through the tunnel: %w", err)
	}
	if !bytes.Equal(got, sent) {
		return errors.New("the echo through the tunnel differs from what was sent")
	}
	return nil
}

// waitFor waits for re to match a running command's stdout and returns
// its first group.
func waitFor(t *testing.T, stdout, stderr fmt.Stringer, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			return m[1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s in the output: %s\n%s", re, stdout, stderr)
	return ""
}

// interrupt sends Ctrl-C and wants a clean exit.
func interrupt(t *testing.T, cmd *exec.Cmd, stderr fmt.Stringer) {
	t.Helper()
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after Ctrl-C: %v\n%s", err, stderr)
		}
	case <-time.After(time.Minute):
		t.Fatal("no exit within a minute of Ctrl-C")
	}
}
