package labtest

import (
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/lab/sandbox"
	"github.com/passport-access/terraform-provider-passport/internal/testterm"
)

// Converse logs in to h as user on an 80x24 terminal, as a person at a
// keyboard would, and step by step waits for the terminal to show step[0]
// and types step[1]; the shell must end after the last step. It returns
// what the terminal showed.
func Converse(t testing.TB, h *sandbox.Host, user string, signer ssh.Signer, steps ...[2]string) string {
	t.Helper()
	key := HostKey(t, h)
	conn, err := ssh.Dial("tcp", h.SSHAddr(), &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(key), HostKeyAlgorithms: []string{key.Type()}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("login to %s as %s: %v", h.Info().InstanceID, user, err)
	}
	defer conn.Close()
	return testterm.Converse(t, conn, steps...)
}
