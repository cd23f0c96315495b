package lab

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/clock"
	"github.com/passport-access/terraform-provider-passport/internal/connect"
	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab/winhost"
)

// runPowerShell sends a script with AWS-RunPowerShellScript through the
// real SDK and waits for its invocation to finish.
func runPowerShell(t *testing.T, c *ssmsdk.Client, instanceID, script string) *ssmsdk.GetCommandInvocationOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sent, err := c.SendCommand(ctx, &ssmsdk.SendCommandInput{
		DocumentName: aws.String("AWS-RunPowerShellScript"),
		InstanceIds:  []string{instanceID},
		Parameters:   map[string][]string{"commands": {script}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for {
		out, err := c.GetCommandInvocation(ctx, &ssmsdk.GetCommandInvocationInput{CommandId: sent.Command.CommandId, InstanceId: aws.String(instanceID)})
		var missing *types.InvocationDoesNotExist
		switch {
		case errors.As(err, &missing):
		case err != nil:
			t.Fatal(err)
		case out.Status != types.CommandInvocationStatusPending && out.Status != types.CommandInvocationStatusInProgress:
			return out
		}
		select {
		case <-ctx.Done():
			t.Fatalf("command on %s did not finish: %v", instanceID, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestWindowsPasswordThroughSSMAndTunnel is the Windows flow end to end on
// the lab: the real SDK provisions a user with the shipped PowerShell
// program, the sealed password opens with the requester's key, and it logs
// on at port 3389 directly and through a Session Manager port-forwarding
// session, until the window ends or the user is revoked.
func TestWindowsPasswordThroughSSMAndTunnel(t *testing.T) {
	clk := clock.NewFake(time.Now().Truncate(time.Second))
	l := startLab(t, Options{WindowsHosts: 1, Now: clk.Now})
	if len(l.Windows) != 1 {
		t.Fatalf("lab has %d Windows hosts, want 1", len(l.Windows))
	}
	h := l.Windows[0]
	id := h.Info().InstanceID
	c := ssmClient(l, l.SecretAccessKey)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	info, err := c.DescribeInstanceInformation(ctx, &ssmsdk.DescribeInstanceInformationInput{})
	if err != nil || len(info.InstanceInformationList) != 1 {
		t.Fatalf("DescribeInstanceInformation: %v, %+v", err, info)
	}
	if i := info.InstanceInformationList[0]; i.PlatformType != types.PlatformTypeWindows || aws.ToString(i.PlatformName) != winhost.PlatformName ||
		aws.ToString(i.IPAddress)+":3389" != h.RDPAddr() {
		t.Errorf("the Windows host registers as %s %q at %s", i.PlatformType, aws.ToString(i.PlatformName), aws.ToString(i.IPAddress))
	}
	if s := l.State(); len(s.Windows) != 1 || s.Windows[0].RDP != h.RDPAddr() || s.Windows[0].InstanceID != id {
		t.Errorf("lab.json's Windows hosts: %+v", s.Windows)
	}

	_, err = c.SendCommand(ctx, &ssmsdk.SendCommandInput{
		DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{id},
		Parameters: map[string][]string{"commands": {"id"}},
	})
	var platform *types.UnsupportedPlatformType
	if !errors.As(err, &platform) {
		t.Errorf("AWS-RunShellScript to a Windows host: %v, want UnsupportedPlatformType", err)
	}

	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	expires := clk.Now().Add(time.Hour)
	script, err := hostscript.ProvisionWindows(hostscript.WindowsGrant{
		Username: "pp-win", RequestID: "ar-win-1", Requester: "alice", ExpiresAt: expires, SealKey: &key.PublicKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	out := runPowerShell(t, c, id, script)
	if out.Status != types.CommandInvocationStatusSuccess {
		t.Fatalf("provision: %s, exit %d, stderr %s", out.Status, out.ResponseCode, aws.ToString(out.StandardErrorContent))
	}
	res, err := hostscript.ParseResult(aws.ToString(out.StandardOutputContent))
	if err != nil || !res.OK || res.User != "pp-win" {
		t.Fatalf("provision result: %+v, %v", res, err)
	}
	password, err := hostscript.OpenPassword(key, res)
	if err != nil || password == "" {
		t.Fatalf("OpenPassword: %v", err)
	}
	if strings.Contains(aws.ToString(out.StandardOutputContent)+aws.ToString(out.StandardErrorContent), password) {
		t.Fatal("the clear password is in the command's output")
	}

	if err := winhost.Logon(ctx, h.RDPAddr(), "pp-win", password); err != nil {
		t.Fatalf("logon at %s with the provisioned password: %v", h.RDPAddr(), err)
	}
	var denied *winhost.DeniedError
	if err := winhost.Logon(ctx, h.RDPAddr(), "pp-win", password+"0"); !errors.As(err, &denied) || denied.Reason != winhost.ReasonWrongPassword {
		t.Errorf("a wrong password: %v", err)
	}

	// Through Session Manager, as passport rdp connects.
	sess, err := connect.Connector{API: c}.Start(ctx, id, winhost.RDPPort, connect.PortForwardDocument)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.End()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fwdCtx, stopForward := context.WithCancel(ctx)
	defer stopForward()
	go connect.Forward(fwdCtx, ln, sess.Conn, func(err error) { t.Errorf("tunnel: %v", err) })
	if err := winhost.Logon(ctx, ln.Addr().String(), "pp-win", password); err != nil {
		t.Fatalf("logon through the Session Manager tunnel: %v", err)
	}
	if err := winhost.Logon(ctx, ln.Addr().String(), "pp-win", "not-the-password"); !errors.As(err, &denied) || denied.Reason != winhost.ReasonWrongPassword {
		t.Errorf("a wrong password through the tunnel: %v", err)
	}
	stopForward()
	sess.End()

	// The window ends on the lab's clock: AccountExpires locks the account.
	clk.Advance(time.Hour + time.Second)
	if err := winhost.Logon(ctx, h.RDPAddr(), "pp-win", password); !errors.As(err, &denied) || denied.Reason != winhost.ReasonExpired {
		t.Errorf("logon after the window: %v, want %q", err, winhost.ReasonExpired)
	}

	revoke, err := hostscript.RevokeWindows("pp-win")
	if err != nil {
		t.Fatal(err)
	}
	out = runPowerShell(t, c, id, revoke)
	if res, err := hostscript.ParseResult(aws.ToString(out.StandardOutputContent)); err != nil || !res.OK {
		t.Fatalf("revoke: %+v, %v (stderr %s)", res, err, aws.ToString(out.StandardErrorContent))
	}
	if err := winhost.Logon(ctx, h.RDPAddr(), "pp-win", password); !errors.As(err, &denied) || denied.Reason != winhost.ReasonUnknownUser {
		t.Errorf("logon after revoke: %v, want %q", err, winhost.ReasonUnknownUser)
	}
}

// TestWindowsRefusesOtherScriptsThroughSSM: a script that is not the
// shipped program fails its invocation with exit 2 and changes nothing.
func TestWindowsRefusesOtherScriptsThroughSSM(t *testing.T) {
	l := startLab(t, Options{WindowsHosts: 1})
	h := l.Windows[0]
	c := ssmClient(l, l.SecretAccessKey)
	key, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	good, err := hostscript.ProvisionWindows(hostscript.WindowsGrant{
		Username: "pp-win", RequestID: "ar-win-2", Requester: "alice", ExpiresAt: time.Now().Add(time.Hour), SealKey: &key.PublicKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	linux, err := hostscript.Revoke(hostscript.Revocation{Username: "pp-win"})
	if err != nil {
		t.Fatal(err)
	}
	i := len(good) - 2
	for _, script := range []string{good[:i] + "X" + good[i+1:], linux, "Write-Output hello"} {
		out := runPowerShell(t, c, h.Info().InstanceID, script)
		if out.Status != types.CommandInvocationStatusFailed || out.ResponseCode != hostscript.ExitData ||
			!strings.Contains(aws.ToString(out.StandardErrorContent), "shipped") {
			t.Errorf("%.40q: %s, exit %d, stderr %q; want Failed with exit 2", script, out.Status, out.ResponseCode, aws.ToString(out.StandardErrorContent))
		}
	}
	if users := h.Users(); len(users) != 0 {
		t.Errorf("refused scripts changed the host: %+v", users)
	}
}
