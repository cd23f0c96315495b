package session_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// hostListener listens on a sandbox host's own address: hosts share the
// machine's network, so a port-forwarding session to the host reaches it.
func hostListener(t *testing.T, h *sandbox.Host, serve func(net.Conn)) int {
	t.Helper()
	ip, _, _ := net.SplitHostPort(h.SSHAddr())
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
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
				serve(c)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// digest reads an 8-byte length and that many bytes and answers their
// SHA-256.
func digest(c net.Conn) {
	var n uint64
	if binary.Read(c, binary.BigEndian, &n) != nil {
		return
	}
	h := sha256.New()
	io.CopyN(h, c, int64(n))
	c.Write(h.Sum(nil))
}

// sendChecked sends n pseudo-random bytes behind their length and checks
// the digest that comes back: a byte lost, repeated or changed fails it.
func sendChecked(t *testing.T, c io.ReadWriter, n int64) {
	t.Helper()
	if err := binary.Write(c, binary.BigEndian, uint64(n)); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{1})
	block := make([]byte, 256<<10)
	for sent := int64(0); sent < n; {
		k := min(int64(len(block)), n-sent)
		rng.Read(block[:k])
		h.Write(block[:k])
		if _, err := c.Write(block[:k]); err != nil {
			t.Fatalf("after %d bytes: %v", sent, err)
		}
		sent += k
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading the digest: %v", err)
	}
	if !bytes.Equal(got, h.Sum(nil)) {
		t.Fatal("what arrived differs from what was sent")
	}
}

// TestTransferThroughRecycledWebsockets: 1 GiB crosses a tunnel whose
// websocket the gateway closes every 2 seconds, dropping some sooner at
// random; Passport's client resumes each time through ResumeSession and
// the data channel's sequence numbers, and every byte arrives once, in
// order. (About 10 to 20 seconds on two busy cores.)
func TestTransferThroughRecycledWebsockets(t *testing.T) {
	tl := startLab(t, 1)
	tl.sessions.SetWebsocketLifetime(2 * time.Second)
	tl.sessions.SetWebsocketFaults(5 * time.Second)
	h := tl.Hosts[0]
	port := hostListener(t, h, digest)
	s := tl.open(t, tl.start(t, h.Info().InstanceID, "AWS-StartPortForwardingSession", map[string][]string{"portNumber": {strconv.Itoa(port)}}))
	defer s.Terminate()
	c, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	const n = 1 << 30
	sendChecked(t, c, n)
	elapsed := time.Since(start)
	t.Logf("%d MiB in %v across %d websockets", n>>20, elapsed.Round(time.Millisecond), s.Resumes()+1)
	// At one closing per 2 seconds at most, the transfer resumed at least
	// this often; fewer would mean the gateway did not close them.
	if want := int(elapsed/(2*time.Second)) - 1; s.Resumes() < want || s.Resumes() == 0 {
		t.Fatalf("the session resumed %d times in %v; the gateway should have closed its websocket at least %d times", s.Resumes(), elapsed, max(want, 1))
	}
}

// TestIdleTunnelFor12Hours: a port-forwarding session sits idle for 12
// hours on an injected clock while the gateway closes its websocket every
// hour, as AWS does; the client resumes each time, and at the end the
// connection opened at the start and a new one both carry traffic.
func TestIdleTunnelFor12Hours(t *testing.T) {
	if err := sandbox.Available(); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "lab")
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Date(2026, 1, 24, 8, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: 1, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	api := ssmsdk.NewFromConfig(l.AWSConfig())
	h := l.Hosts[0]
	port := hostListener(t, h, func(c net.Conn) { io.Copy(c, c) })
	out, err := api.StartSession(ctx, &ssmsdk.StartSessionInput{Target: aws.String(h.Info().InstanceID),
		DocumentName: aws.String("AWS-StartPortForwardingSession"), Parameters: map[string][]string{"portNumber": {strconv.Itoa(port)}}})
	if err != nil {
		t.Fatal(err)
	}
	d := ssmsession.Dialer{Resume: func(ctx context.Context) (string, string, error) {
		r, err := api.ResumeSession(ctx, &ssmsdk.ResumeSessionInput{SessionId: out.SessionId})
		if err != nil {
			return "", "", err
		}
		return aws.ToString(r.StreamUrl), aws.ToString(r.TokenValue), nil
	}}
	s, err := d.Dial(ctx, aws.ToString(out.StreamUrl), aws.ToString(out.TokenValue))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Terminate()
	early, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	echo := func(c net.Conn, msg string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	echo(early, "before the night")

	for hour := 1; hour <= 12; hour++ {
		clk.Advance(30 * time.Minute)
		clk.Advance(30 * time.Minute)
		// The websocket is an hour old now: the gateway closes it and the
		// client resumes. Wait for that before the clock moves on, since a
		// resumed websocket's token expires by the same clock.
		deadline := time.Now().Add(30 * time.Second)
		for s.Resumes() < hour {
			if s.Err() != nil || time.Now().After(deadline) {
				t.Fatalf("hour %d: the session resumed %d times (err %v); want one resume per hour", hour, s.Resumes(), s.Err())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	echo(early, "still here after 12 hours")
	late, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	echo(late, "a new connection")
	if calls := l.Server.Calls()["AmazonSSM.ResumeSession"]; calls != 12 {
		t.Errorf("ResumeSession was called %d times in 12 hours, want 12", calls)
	}
}
