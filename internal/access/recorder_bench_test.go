package access

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/benchpair"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/ssmsession"
)

// BenchmarkRecorderRoundTripTunnel types a line on a terminal running cat
// and waits for it to come back, the way a person's keystrokes travel:
// through a Session Manager tunnel (Passport's own client, the lab's
// Session Manager and agent) to the host's sshd. A recorded Passport user
// and an ordinary account of the same host take turns (package
// benchpair); hostscript's BenchmarkRecorderRoundTrip measures the same
// straight to sshd.
func BenchmarkRecorderRoundTripTunnel(b *testing.B) {
	l := startLab(b, 1, 0)
	h := l.Hosts[0]
	id := h.Info().InstanceID
	g := grant(b, l.svc, request(newCA(b), id))
	if !strings.Contains(onHost(b, h, "ls /var/lib/passport/recordings"), g.Username) {
		b.Fatalf("%s is not recorded on %s", g.Username, id)
	}
	connector := connect.Connector{API: l.ssm, Dialer: ssmsession.Dialer{}}
	rec := benchpair.OpenEcho(b, tunnelClient(b, connector, h, g.Username, credentialOf(b, g, nil).signer))
	defer rec.Close()
	base := benchpair.OpenEcho(b, tunnelClient(b, connector, h, "plain", plainAccount(b, h, "plain")))
	defer base.Close()
	benchpair.RoundTrips(b, base, rec)
}

// tunnelOutput is how much a command prints to its terminal per
// iteration of BenchmarkRecorderOutputTunnel, as in hostscript's
// BenchmarkRecorderOutput.
const tunnelOutput = 100 << 20

// BenchmarkRecorderOutputTunnel prints 100 MiB on a terminal, recorded and
// not, through a Session Manager tunnel to the same host: what a person
// waits for when a command floods their screen.
func BenchmarkRecorderOutputTunnel(b *testing.B) {
	l := startLab(b, 1, 0)
	h := l.Hosts[0]
	id := h.Info().InstanceID
	g := grant(b, l.svc, request(newCA(b), id))
	connector := connect.Connector{API: l.ssm, Dialer: ssmsession.Dialer{}}
	rec := tunnelClient(b, connector, h, g.Username, credentialOf(b, g, nil).signer)
	base := tunnelClient(b, connector, h, "plain", plainAccount(b, h, "plain"))
	run := func(c *ssh.Client) time.Duration { return benchpair.Print(b, c, tunnelOutput) }
	var p benchpair.Pairs
	b.SetBytes(tunnelOutput)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Add(i, func() time.Duration { return run(base) }, func() time.Duration { return run(rec) })
		b.StopTimer()
		// Each recording holds the 100 MiB; the host's disk is a test's.
		onHost(b, h, "rm -rf /var/lib/passport/recordings/"+g.Username+"/[0-9]*")
		b.StartTimer()
	}
	p.Report(b, time.Millisecond, "ms")
}

// plainAccount makes an ordinary account on h that logs in with a key of
// its own: no Passport, no recorder.
func plainAccount(b *testing.B, h *sandbox.Host, name string) ssh.Signer {
	b.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		b.Fatal(err)
	}
	onHost(b, h, "set -e\nuseradd -m -s /bin/sh "+name+"\ninstall -d -m 700 -o "+name+" -g "+name+" /home/"+name+"/.ssh\n"+
		"printf '%s\\n' '"+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key.PublicKey())))+"' >/home/"+name+"/.ssh/authorized_keys\n"+
		"chown "+name+": /home/"+name+"/.ssh/authorized_keys")
	return key
}

// tunnelClient opens a Session Manager tunnel to h's sshd and logs in
// through it as user.
func tunnelClient(b *testing.B, connector connect.Connector, h *sandbox.Host, user string, signer ssh.Signer) *ssh.Client {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := connector.Start(ctx, h.Info().InstanceID, 22, connect.SSHDocument)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.End() })
	stream, err := s.Conn()
	if err != nil {
		b.Fatal(err)
	}
	key := hostKey(b, h)
	conn, chans, reqs, err := ssh.NewClientConn(tunnelConn{stream}, "tunnel", &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   ssh.FixedHostKey(key),
		HostKeyAlgorithms: []string{key.Type()},
	})
	if err != nil {
		b.Fatalf("login as %s through the tunnel: %v", user, err)
	}
	c := ssh.NewClient(conn, chans, reqs)
	b.Cleanup(func() { c.Close() })
	return c
}

// tunnelConn is a tunnel's stream as the net.Conn the SSH client takes;
// the client sets no deadlines on it.
type tunnelConn struct{ io.ReadWriteCloser }

func (tunnelConn) LocalAddr() net.Addr              { return tunnelAddr{} }
func (tunnelConn) RemoteAddr() net.Addr             { return tunnelAddr{} }
func (tunnelConn) SetDeadline(time.Time) error      { return nil }
func (tunnelConn) SetReadDeadline(time.Time) error  { return nil }
func (tunnelConn) SetWriteDeadline(time.Time) error { return nil }

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "ssm" }
func (tunnelAddr) String() string  { return "session-manager" }
