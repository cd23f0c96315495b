package sshca

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestLoginOverSSH logs in to a real x/crypto/ssh server on loopback with
// the certificate, the way a person's client would, and checks what the
// server enforces: trusted CA, principal, window and source-address.
func TestLoginOverSSH(t *testing.T) {
	ca := testCA(t, ECDSAP256)
	inWindow := windowStart.Add(10 * time.Minute)
	tests := []struct {
		name    string
		edit    func(*CertRequest)
		user    string
		now     time.Time
		trusted *CA
		ok      bool
	}{
		{"in window", func(*CertRequest) {}, "pp-k3x9q2", inWindow, ca, true},
		{"other user", func(*CertRequest) {}, "root", inWindow, ca, false},
		{"after window", func(*CertRequest) {}, "pp-k3x9q2", windowStart.Add(time.Hour + time.Second), ca, false},
		{"other CA", func(*CertRequest) {}, "pp-k3x9q2", inWindow, testCA(t, Ed25519), false},
		{"source address matches", func(r *CertRequest) { r.SourceAddresses = []string{"127.0.0.1/32"} }, "pp-k3x9q2", inWindow, ca, true},
		{"source address elsewhere", func(r *CertRequest) { r.SourceAddresses = []string{"192.0.2.0/24"} }, "pp-k3x9q2", inWindow, ca, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serveSSH(t, tt.trusted, tt.now)
			client, err := ssh.Dial("tcp", addr, certClientConfig(t, ca, tt.user, tt.edit))
			if err == nil {
				client.Close()
			}
			if tt.ok != (err == nil) {
				t.Fatalf("login as %s: err = %v, want ok = %v", tt.user, err, tt.ok)
			}
		})
	}
}

// certClientConfig signs a certificate for a fresh user key, with the
// valid request edited by edit, and returns a client config that logs in
// as user with it.
func certClientConfig(t *testing.T, ca *CA, user string, edit func(*CertRequest)) *ssh.ClientConfig {
	t.Helper()
	userSigner := newUserSigner(t)
	req := validRequest(t)
	req.PublicKey = userSigner.PublicKey()
	edit(&req)
	cert, err := ca.Sign(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	certSigner, err := ssh.NewCertSigner(cert, userSigner)
	if err != nil {
		t.Fatal(err)
	}
	return &ssh.ClientConfig{
		User:            user,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(certSigner)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	}
}

func newUserSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// serveSSH accepts one connection on a loopback port and authenticates it
// against trusted at time now.
func serveSSH(t *testing.T, trusted *CA, now time.Time) string {
	t.Helper()
	checker := certChecker(trusted, now)
	config := &ssh.ServerConfig{PublicKeyCallback: checker.Authenticate}
	config.AddHostKey(newUserSigner(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(time.Minute))
		sc, chans, reqs, err := ssh.NewServerConn(conn, config)
		if err != nil {
			return
		}
		go ssh.DiscardRequests(reqs)
		go func() {
			for ch := range chans {
				ch.Reject(ssh.Prohibited, "no sessions in this test")
			}
		}()
		sc.Wait()
	}()
	return ln.Addr().String()
}
