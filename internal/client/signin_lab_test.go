package client_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/awsidentity"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/service/servicetest"
)

// With nobody signed in, Open signs the lab's requester in as a machine,
// says so, and signs it in again when the service no longer takes its
// token (revoked here; ended, after an hour, in a long tunnel).
func TestOpenSignsAMachineInAndAgain(t *testing.T) {
	l := labtest.Start(t, lab.Options{})
	svc := servicetest.Start(t, l)
	t.Setenv("PASSPORT_CONFIG_DIR", t.TempDir())
	t.Setenv("PASSPORT_TOKEN", "")
	ctx := context.Background()
	requester := func(context.Context) (aws.Config, error) {
		return aws.Config{Region: l.Region, Credentials: credentials.NewStaticCredentialsProvider(l.Requester.AccessKeyID, l.Requester.SecretAccessKey, "")}, nil
	}
	var announced api.Principal
	c, err := client.Open(ctx, svc.URL, client.SignIn{Machine: requester, MachineSignedIn: func(p api.Principal) { announced = p }})
	if err != nil {
		t.Fatal(err)
	}
	const arn = "arn:aws:iam::" + lab.AccountID + ":user/requester"
	if announced.Name != arn || announced.Kind != "machine" {
		t.Errorf("Open announced %+v, want the requester machine", announced)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	me, err := c.WhoAmI(ctx)
	if err != nil || me.Name != arn {
		t.Fatalf("whoami after the machine's token was revoked: %+v, %v; want a new sign-in as %s", me, err, arn)
	}

	// A token given as it is never renewed: its owner must sign in.
	info, err := c.AWSLoginInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := requester(ctx)
	login, err := awsidentity.Sign(ctx, cfg, info)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.AWSLogin(ctx, login)
	if err != nil {
		t.Fatal(err)
	}
	person := c.WithToken(tok.Token)
	if err := person.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := person.WhoAmI(ctx); client.CodeOf(err) != api.CodeUnauthenticated {
		t.Errorf("a plain token's client after logout: %v; want unauthenticated", err)
	}
}
