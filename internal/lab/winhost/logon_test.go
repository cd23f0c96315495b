package winhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// exchange sends raw bytes to the logon check, half-closes when asked, and
// returns everything the host answers before it closes.
func exchange(t *testing.T, addr string, send []byte, halfClose bool) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(send); err != nil {
		t.Fatalf("write: %v", err)
	}
	if halfClose {
		c.(*net.TCPConn).CloseWrite()
	}
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v (got %q)", err, got)
	}
	return string(got)
}

func logonLine(user, password string) string {
	return LogonVerb + " " + base64.StdEncoding.EncodeToString([]byte(user)) + " " + base64.StdEncoding.EncodeToString([]byte(password)) + "\n"
}

// TestLogonCheckSurvivesBadInput: whatever arrives, the host answers one
// clear line (or an RDP refusal) and closes, and keeps serving.
func TestLogonCheckSurvivesBadInput(t *testing.T) {
	h, _ := newHost(t, Config{LogonTimeout: 500 * time.Millisecond})
	pw := provision(t, h, "pp-lee", "ar-10", testStart.Add(time.Hour), false)
	malformed := "DENIED " + ReasonMalformed + "\n"
	for _, tc := range []struct {
		name      string
		send      []byte
		halfClose bool
		want      string
	}{
		{"long line", []byte(strings.Repeat("A", 100_000) + "\n"), false, malformed},
		{"long line of a valid shape", []byte(LogonVerb + " " + strings.Repeat("QUFB", 300) + " eA==\n"), false, malformed},
		{"no newline, then EOF", []byte(strings.TrimSuffix(logonLine("pp-lee", pw), "\n")), true, malformed},
		{"no newline, client waits", []byte(LogonVerb + " cHAtbGVl"), false, malformed},
		{"nothing at all", nil, true, malformed},
		{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, malformed},
		{"binary", []byte{0xff, 0x00, 0x10, '\n'}, false, malformed},
		{"bad base64", []byte(LogonVerb + " !!! ???\n"), false, malformed},
		{"extra field", []byte(strings.TrimSuffix(logonLine("pp-lee", pw), "\n") + " eA==\n"), false, malformed},
		{"control character in the user", []byte(logonLine("pp-lee\x00", pw)), false, malformed},
		{"lower-case verb", []byte(strings.ToLower(LogonVerb) + logonLine("pp-lee", pw)[len(LogonVerb):]), false, malformed},
		{"crlf", []byte(strings.TrimSuffix(logonLine("pp-lee", pw), "\n") + "\r\n"), false, "OK pp-lee\n"},
		{"valid", []byte(logonLine("pp-lee", pw)), false, "OK pp-lee\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exchange(t, h.RDPAddr(), tc.send, tc.halfClose); got != tc.want {
				t.Errorf("answer %q, want %q", clip(got), tc.want)
			}
		})
	}

	t.Run("RDP client", func(t *testing.T) {
		// The start of an X.224 Connection Request, as mstsc sends it.
		cr := []byte{0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00}
		got := exchange(t, h.RDPAddr(), cr, false)
		if !strings.HasPrefix(got, "\x03\x00\x00\x0b\x06\x80") || !strings.Contains(got, "not an RDP server") {
			t.Errorf("an RDP client got %q, want an X.224 disconnect and the reason", got)
		}
		err := Logon(context.Background(), h.RDPAddr(), "pp-lee", pw)
		if err != nil {
			t.Fatalf("logon after an RDP client: %v", err)
		}
	})
}

// TestLogonCheckUnderLoad: many connections at once each get their own
// answer; past the limit they are told the host is busy, not left hanging.
func TestLogonCheckUnderLoad(t *testing.T) {
	h, _ := newHost(t, Config{MaxLogons: 8, LogonTimeout: 5 * time.Second})
	pw := provision(t, h, "pp-max", "ar-11", testStart.Add(time.Hour), false)

	// Hold every slot with connections that have sent nothing yet.
	var held []net.Conn
	for range 8 {
		c, err := net.Dial("tcp", h.RDPAddr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The eighth slot is taken once the host has accepted all eight; a
	// ninth connection is then refused at once.
	deadline := time.Now().Add(time.Minute)
	for {
		h.state.Lock()
		n := len(h.conns)
		h.state.Unlock()
		if n == 8 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host holds %d connections after a minute, want 8", n)
		}
		time.Sleep(time.Millisecond)
	}
	if got := exchange(t, h.RDPAddr(), []byte(logonLine("pp-max", pw)), false); got != "DENIED "+ReasonBusy+"\n" {
		t.Errorf("past the limit: %q, want busy", got)
	}
	for _, c := range held {
		c.Close()
	}

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			password := pw
			if i%2 == 1 {
				password = "wrong"
			}
			for {
				err := Logon(context.Background(), h.RDPAddr(), "pp-max", password)
				if d, ok := err.(*DeniedError); ok && d.Reason == ReasonBusy {
					continue // the client retries, as a person would
				}
				if (err == nil) != (i%2 == 0) {
					errs <- err
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent logon: %v", err)
	}
}

// TestLogonClientRefusesOtherServers: the client reports a server that does
// not speak the lab protocol, and never shows the password.
func TestLogonClientRefusesOtherServers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
			c.Close()
		}
	}()
	const secret = "S3cret-Passw0rd!"
	err = Logon(context.Background(), ln.Addr().String(), "pp-ned", secret)
	if err == nil || !strings.Contains(err.Error(), "not the lab's logon protocol") || strings.Contains(err.Error(), secret) {
		t.Errorf("Logon to an SSH server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Logon(ctx, ln.Addr().String(), "pp-ned", secret); err == nil || bytes.Contains([]byte(err.Error()), []byte(secret)) {
		t.Errorf("Logon with a cancelled context: %v", err)
	}
}

// FuzzParseLogon: no line crashes the parser, and what it accepts is a
// printable user and a non-empty password that a client could have sent.
func FuzzParseLogon(f *testing.F) {
	f.Add([]byte(logonLine("pp-a", "Pass-word-1")))
	f.Add([]byte(LogonVerb + "  \n"))
	f.Add([]byte("\x03\x00\x00\x13"))
	f.Fuzz(func(t *testing.T, line []byte) {
		user, password, ok := parseLogon(line)
		if !ok {
			return
		}
		if !printable(user) || password == "" {
			t.Fatalf("accepted user %q, password of %d bytes", user, len(password))
		}
		if again := logonLine(user, password); again != strings.TrimSuffix(string(line), "\r\n")+"\n" && again != string(line) {
			t.Fatalf("accepted %q, which is not how a client writes %q", line, again)
		}
	})
}
