package access

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	ssmsdk "github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/documents"
	"github.com/passport-access/terraform-provider-passport/internal/fleet"
	"github.com/passport-access/terraform-provider-passport/internal/sshca"
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

// A grant made with the service identity alone, through Passport's
// documents and with a certificate authority in KMS, does on real hosts
// what a direct one does: the certificate logs in with OpenSSH, the
// Windows password logs on, and after the revoke neither does. Nothing
// goes through AWS's script documents, which the service may not send;
// the requester, who may send nothing, cannot go around the service.
func TestGrantThroughPassportDocuments(t *testing.T) {
	l := startMixedLab(t, 1, 1)
	ctx := context.Background()
	// The operator makes the CA, as Terraform would; the service opens it
	// by its key id and signs with kms:Sign, which its policy allows on
	// keys tagged as Passport's CAs.
	made, err := sshca.CreateKMS(ctx, kms.NewFromConfig(l.AWSConfig()), sshca.ECDSAP256,
		sshca.KMSKeyOptions{Description: "passport CA documents-test", Tags: map[string]string{"passport:certificate-authority": "documents-test"}})
	if err != nil {
		t.Fatal(err)
	}
	asService := l.AWSConfigAs(l.Service)
	ca, err := sshca.OpenKMS(ctx, kms.NewFromConfig(asService), made.KMSKeyID())
	if err != nil {
		t.Fatalf("the service opening the CA: %v", err)
	}
	svc := l.documentService(t, ssmsdk.NewFromConfig(asService))
	linux, windows := l.Hosts[0], l.Windows[0]
	targets := []string{linux.Info().InstanceID, windows.Info().InstanceID}

	t.Run("the requester cannot go around the service", func(t *testing.T) {
		direct, err := New(Config{Fleet: fleet.New(ssmsdk.NewFromConfig(l.AWSConfigAs(l.Requester)), fleet.Options{}), Now: l.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		_, err = direct.Grant(ctx, request(ca, targets...))
		var denied *ssmtypes.AccessDeniedException
		if !errors.As(err, &denied) {
			t.Fatalf("a grant with the requester's own credentials: %v; want AccessDeniedException", err)
		}
		if users := passportUsers(t, linux); users != "" {
			t.Fatalf("the refused grant left %q on %s", users, linux.Info().InstanceID)
		}
	})

	g := grant(t, svc, request(ca, targets...))

	c := credentialOf(t, g, nil)
	if got, err := opensshLogin(t, linux, g.Username, c); err != nil || got != g.Username {
		t.Fatalf("ssh with the certificate: %q, %v", got, err)
	}
	pw := g.Passwords[windows.Info().InstanceID]
	mustLogOn(t, windows, g.Username, pw)

	if h, err := svc.Check(ctx, g); err != nil || len(h.Missing)+len(h.Unreachable) > 0 {
		t.Fatalf("Check through the documents: %+v, %v", h, err)
	}
	next, err := svc.Extend(ctx, testActor, g, ca, 2*time.Hour)
	if err != nil {
		t.Fatalf("Extend through the documents: %v", err)
	}
	if acct, _ := windows.Account(g.Username); !acct.Expires.Equal(next.ExpiresAt) {
		t.Fatalf("the Windows account expires %s, want %s", acct.Expires, next.ExpiresAt)
	}
	if err := svc.Revoke(ctx, testActor, next); err != nil {
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
