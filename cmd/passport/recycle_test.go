package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/testwait"
)

// TestConnectCommandsSurviveRecycledWebsockets: the lab's gateway closes
// every Session Manager websocket after a second, as AWS closes them after
// an hour. passport ssh (through passport proxy) and passport tunnel resume
// their sessions each time and lose nothing.
func TestConnectCommandsSurviveRecycledWebsockets(t *testing.T) {
	cl := startConnectLabWith(t, lab.Options{Hosts: 1, WebsocketLifetime: time.Second})
	host := cl.Hosts[0].Info()
	resumes := func() int { return cl.Server.Calls()["AmazonSSM.ResumeSession"] }
	waitResume := func(after int) { waitForResume(t, resumes, after) }

	t.Run("ssh", func(t *testing.T) { sshAcrossRecycles(t, host.ComputerName, resumes) })

	t.Run("tunnel", func(t *testing.T) {
		ln, err := net.Listen("tcp", net.JoinHostPort(host.IPAddress, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			var n uint64
			binary.Read(c, binary.BigEndian, &n)
			h := sha256.New()
			io.CopyN(h, c, int64(n))
			c.Write(h.Sum(nil))
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		cmd, stdout, stderr := passport(t, "tunnel", host.InstanceID, "--remote-port", strconv.Itoa(port))
		addr := waitFor(t, stdout, stderr, regexp.MustCompile(`Forwarding (127\.0\.0\.1:\d+) to`))
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		before := resumes()
		const half = 32 << 20
		binary.Write(c, binary.BigEndian, uint64(2*half))
		h := sha256.New()
		rng := rand.NewChaCha8([32]byte{2})
		send := func() {
			block := make([]byte, 256<<10)
			for sent := 0; sent < half; sent += len(block) {
				rng.Read(block)
				h.Write(block)
				if _, err := c.Write(block); err != nil {
					t.Fatal(err)
				}
			}
		}
		send()
		// The second half goes only after a websocket was recycled under
		// the first.
		waitResume(before)
		send()
		got := make([]byte, sha256.Size)
		c.SetReadDeadline(time.Now().Add(time.Minute))
		if _, err := io.ReadFull(bufio.NewReader(c), got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, h.Sum(nil)) {
			t.Fatal("what arrived through passport tunnel differs from what was sent")
		}
		interrupt(t, cmd, stderr)
	})
}

// waitForResume waits until resumes counts more than after.
func waitForResume(t *testing.T, resumes func() int, after int) {
	t.Helper()
	testwait.Until(t, "a websocket recycled and resumed (ResumeSession called)", func() bool { return resumes() > after })
}

// sshAcrossRecycles runs passport ssh to target with a remote command
// that waits for a line, and sends the line only after two websockets
// were recycled and resumed (resumes counts ResumeSession calls).
func sshAcrossRecycles(t *testing.T, target string, resumes func() int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "ssh", target, "--", "read line; echo got $line")
	cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1")
	stdin, _ := cmd.StdinPipe()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	before := resumes()
	// Two recycles while the remote command waits for its line.
	waitForResume(t, resumes, before)
	waitForResume(t, resumes, before+1)
	io.WriteString(stdin, "after two new websockets\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil || stdout.String() != "got after two new websockets\n" {
		t.Fatalf("passport ssh across recycled websockets: %v, %q\n%s", err, stdout.String(), stderr.String())
	}
}
