package client

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// Open's refusals need no service: they are decided by what is kept on
// this machine. The sign-ins that reach a service are tested against a
// real one on the lab (cmd/passport's service tests).
func TestOpenSaysHowToSignIn(t *testing.T) {
	t.Setenv("PASSPORT_CONFIG_DIR", t.TempDir())
	t.Setenv("PASSPORT_TOKEN", "")
	const server = "http://127.0.0.1:9"
	now := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	machineAsked := false
	machine := func(context.Context) (aws.Config, error) {
		machineAsked = true
		return aws.Config{}, errors.New("no credentials in this test")
	}

	_, err := Open(context.Background(), server, SignIn{Now: func() time.Time { return now }})
	if !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), "run passport login --server "+server) {
		t.Errorf("nobody signed in, no machine: %v; want ErrNoToken saying to run passport login --server", err)
	}
	_, err = Open(context.Background(), server, SignIn{Machine: machine, Now: func() time.Time { return now }})
	if !machineAsked || !errors.Is(err, ErrNoToken) || !strings.Contains(err.Error(), "no AWS credentials to sign in as a machine") {
		t.Errorf("nobody signed in, no AWS credentials: %v; want both ways named", err)
	}

	if err := SaveToken(server, api.Token{Token: "ppt_x", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	machineAsked = false
	c, err := Open(context.Background(), server, SignIn{Machine: machine, Now: func() time.Time { return now }})
	if err != nil || c.bearer() != "ppt_x" || machineAsked {
		t.Errorf("a person's kept token: %v, bearer %q, machine asked %v; want the token, and no machine", err, c.bearer(), machineAsked)
	}
	_, err = Open(context.Background(), server, SignIn{Machine: machine, Now: func() time.Time { return now.Add(2 * time.Hour) }})
	if !errors.Is(err, ErrTokenExpired) || machineAsked || !strings.Contains(err.Error(), "run passport login --server") {
		t.Errorf("a person's ended token: %v, machine asked %v; want ErrTokenExpired and no machine sign-in in their place", err, machineAsked)
	}
}
