package access

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/documents"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
)

// documentService is a Service on the lab that sends every host program
// through Passport's published documents, with client's credentials.
func (l *testLab) documentService(t *testing.T, client *ssmsdk.Client) *Service {
	t.Helper()
	docs, err := documents.Publish(context.Background(), client)
	if err != nil {
		t.Fatalf("publishing Passport's documents: %v", err)
	}
	svc, err := New(Config{
		Fleet:     fleet.New(client, fleet.Options{FirstPoll: 50 * time.Millisecond, MaxPoll: 250 * time.Millisecond, ThrottleBackoff: 10 * time.Millisecond}),
		Now:       l.clock.Now,
		Timeout:   2 * time.Minute,
		Documents: docs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// documentsSent lists the documents of every command the lab received.
func (l *testLab) documentsSent(t *testing.T) []string {
	t.Helper()
	var names []string
	p := ssmsdk.NewListCommandsPaginator(l.ssm, &ssmsdk.ListCommandsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out.Commands {
			names = append(names, aws.ToString(c.DocumentName))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// A grant through Passport's documents does on real hosts what a direct
// one does: the certificate logs in with OpenSSH, the Windows password
// logs on, and after the revoke neither does. Nothing goes through AWS's
// script documents.
func TestGrantThroughPassportDocuments(t *testing.T) {
	l := startMixedLab(t, 1, 1)
	svc := l.documentService(t, l.ssm)
	ca := newCA(t)
	linux, windows := l.Hosts[0], l.Windows[0]
	g := grant(t, svc, request(ca, linux.Info().InstanceID, windows.Info().InstanceID))

	c := credentialOf(t, g, nil)
	if got, err := opensshLogin(t, linux, g.Username, c); err != nil || got != g.Username {
		t.Fatalf("ssh with the certificate: %q, %v", got, err)
	}
	pw := g.Passwords[windows.Info().InstanceID]
	mustLogOn(t, windows, g.Username, pw)

	if h, err := svc.Check(context.Background(), g); err != nil || len(h.Missing)+len(h.Unreachable) > 0 {
		t.Fatalf("Check through the documents: %+v, %v", h, err)
	}
	next, err := svc.Extend(context.Background(), testActor, g, ca, 2*time.Hour)
	if err != nil {
		t.Fatalf("Extend through the documents: %v", err)
	}
	if acct, _ := windows.Account(g.Username); !acct.Expires.Equal(next.ExpiresAt) {
		t.Fatalf("the Windows account expires %s, want %s", acct.Expires, next.ExpiresAt)
	}
	if err := svc.Revoke(context.Background(), testActor, next); err != nil {
		t.Fatalf("Revoke through the documents: %v", err)
	}
	if _, err := opensshLogin(t, linux, g.Username, c); err == nil {
		t.Fatal("ssh with the certificate still works after the revoke")
	}
	mustBeRefused(t, linux, g.Username, c.signer, "after the revoke")
	mustBeDenied(t, windows, g.Username, pw, "after the revoke")

	sent := l.documentsSent(t)
	for _, name := range sent {
		if !strings.HasPrefix(name, "Passport-") {
			t.Errorf("the grant sent %s; everything should go through Passport's documents (sent %v)", name, sent)
		}
	}
	for _, want := range []string{"Passport-Linux-Provision", "Passport-Windows-Provision", "Passport-Linux-Check", "Passport-Linux-Extend", "Passport-Windows-Revoke"} {
		if !slices.Contains(sent, want) {
			t.Errorf("%s was never sent (sent %v)", want, sent)
		}
	}
}
