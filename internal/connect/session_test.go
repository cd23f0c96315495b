package connect

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// startLab starts a lab with sandbox hosts and returns it with an SSM
// client for it.
func startLab(t *testing.T, hosts int) (*lab.Lab, *ssmsdk.Client) {
	t.Helper()
	if err := sandbox.Available(); err != nil {
		t.Skip(err)
	}
	if testing.Short() {
		t.Skip("-short: sandbox host tests take seconds each")
	}
	dir, err := os.MkdirTemp("", "cn")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: hosts})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, ssmsdk.NewFromConfig(l.AWSConfig())
}

// echoOn serves an echo on a port of the host's address.
func echoOn(t *testing.T, address string) int {
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
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestSessionResumesAndEnds(t *testing.T) {
	l, client := startLab(t, 1)
	h := l.Hosts[0].Info()
	port := echoOn(t, h.IPAddress)

	var mu sync.Mutex
	var links []net.Conn
	c := Connector{API: client, Dialer: ssmsession.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err == nil {
			mu.Lock()
			links = append(links, conn)
			mu.Unlock()
		}
		return conn, err
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := c.Start(ctx, h.InstanceID, port, PortForwardDocument)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := s.Conn()
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := func(when string) {
		t.Helper()
		sent := make([]byte, 1<<20)
		rand.Read(sent)
		go conn.Write(sent)
		got := make([]byte, len(sent))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, sent) {
			t.Fatalf("echo %s: %v (equal: %v)", when, err, bytes.Equal(got, sent))
		}
	}
	roundTrip("before the cut")
	mu.Lock()
	links[0].Close()
	mu.Unlock()
	roundTrip("after the websocket was cut")
	if s.Resumes() != 1 || l.Server.Calls()["AmazonSSM.ResumeSession"] != 1 {
		t.Errorf("resumes %d, ResumeSession calls %d; want 1 each", s.Resumes(), l.Server.Calls()["AmazonSSM.ResumeSession"])
	}

	if err := s.End(); err != nil {
		t.Fatal(err)
	}
	if n := l.Server.Calls()["AmazonSSM.TerminateSession"]; n != 1 {
		t.Errorf("End made %d TerminateSession calls, want 1", n)
	}
	// A terminated session cannot be resumed: the service has ended it.
	if _, err := client.ResumeSession(ctx, &ssmsdk.ResumeSessionInput{SessionId: aws.String(s.ID)}); err == nil {
		t.Error("the session could still be resumed after End")
	}
}

func TestStartSaysWhyItCannot(t *testing.T) {
	l, client := startLab(t, 1)
	h := l.Hosts[0]
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	c := Connector{API: client}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, target := range []string{h.Info().InstanceID, "i-0123456789abcdef0"} {
		_, err := c.Start(ctx, target, 22, SSHDocument)
		var offline *OfflineError
		if !errors.As(err, &offline) || offline.Target != target {
			t.Errorf("Start to %s: %v, want an OfflineError naming it", target, err)
		}
	}
	stranger := ssmsdk.New(client.Options(), func(o *ssmsdk.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider("AKIAUNKNOWNUNKNOWN00", "wrong", "")
	})
	if _, err := (Connector{API: stranger}).Start(ctx, h.Info().InstanceID, 22, SSHDocument); err == nil || !strings.Contains(err.Error(), "AWS refused your credentials (UnrecognizedClientException)") {
		t.Errorf("unknown credentials: %v", err)
	}
	if _, err := c.Start(ctx, h.Info().InstanceID, 0, SSHDocument); err == nil || err.Error() != "port 0 is not a TCP port (1-65535)" {
		t.Errorf("port 0: %v", err)
	}
	// An identity without ssm:StartSession is told what it lacks.
	l.Server.Deny(l.AccessKeyID, "ssm:StartSession")
	if _, err := c.Start(ctx, h.Info().InstanceID, 22, SSHDocument); err == nil || !strings.Contains(err.Error(), "was denied (AccessDenied): your AWS identity needs ssm:StartSession") {
		t.Errorf("denied identity: %v", err)
	}
}
