package winhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

var testStart = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

// newHost starts a host on a random 127.x.y.z, so parallel test binaries
// do not fight over port 3389.
func newHost(t *testing.T, cfg Config) (*Host, *clock.Fake) {
	t.Helper()
	c := clock.NewFake(testStart)
	cfg.InstanceID, cfg.ComputerName = "i-0123456789abcdef0", "win-test"
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	var err error
	for range 5 {
		var h *Host
		x, _ := rand.Int(rand.Reader, big.NewInt(200))
		y, _ := rand.Int(rand.Reader, big.NewInt(256))
		cfg.Address = fmt.Sprintf("127.%d.%d.201", x.Int64()+20, y.Int64())
		if h, err = New(cfg); err == nil {
			t.Cleanup(func() { h.Close() })
			return h, c
		}
	}
	t.Fatal(err)
	return nil, nil
}

// TestLocalAccountLogonAndOffline needs none of the shipped programs: an
// account an administrator made logs on with its own password, a wrong one
// is denied, and a stopped host runs nothing and answers no logon.
func TestLocalAccountLogonAndOffline(t *testing.T) {
	h, clk := newHost(t, Config{})
	ctx := context.Background()
	if err := h.AddLocalAccount("rdp-user", "Rdp-User-Pass1", GroupRemoteDesktopUsers); err != nil {
		t.Fatal(err)
	}
	if err := Logon(ctx, h.RDPAddr(), "rdp-user", "Rdp-User-Pass1"); err != nil {
		t.Fatalf("logon: %v", err)
	}
	var d *DeniedError
	if err := Logon(ctx, h.RDPAddr(), "rdp-user", "Rdp-User-Pass2"); !errors.As(err, &d) || d.Reason != ReasonWrongPassword {
		t.Errorf("wrong password: %v", err)
	}
	clk.Advance(24 * time.Hour) // no AccountExpires: never expires
	if err := Logon(ctx, h.RDPAddr(), "rdp-user", "Rdp-User-Pass1"); err != nil {
		t.Errorf("an account without AccountExpires, a day later: %v", err)
	}
	h.Stop()
	if _, err := h.Run(ctx, node.Script{Document: "AWS-RunPowerShellScript", Source: "Get-LocalUser"}); !errors.Is(err, node.ErrOffline) {
		t.Errorf("Run on a stopped host: %v, want node.ErrOffline", err)
	}
	if err := Logon(ctx, h.RDPAddr(), "rdp-user", "Rdp-User-Pass1"); err == nil {
		t.Error("a stopped host took a logon")
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if err := Logon(ctx, h.RDPAddr(), "rdp-user", "Rdp-User-Pass1"); err != nil {
		t.Errorf("after Start: %v", err)
	}
}
