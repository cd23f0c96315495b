package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/documents"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

func TestDocumentsPublishAndCheck(t *testing.T) {
	dir, err := os.MkdirTemp("", "docs")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lb, err := lab.Start(ctx, lab.Options{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { lb.Close() })
	for _, kv := range lb.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	t.Setenv("AWS_PROFILE", "")

	if _, stderr, err := passportRun(t, "documents", "check"); err == nil || !strings.Contains(stderr, "passport documents publish") {
		t.Fatalf("check before publishing: %v\n%s", err, stderr)
	}
	stdout, stderr, err := passportRun(t, "documents", "publish")
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, stderr)
	}
	for _, name := range documents.Names() {
		if !strings.Contains(stdout, name+" ") {
			t.Errorf("publish does not list %s:\n%s", name, stdout)
		}
	}
	if strings.Count(stdout, " created ") != len(documents.Names()) {
		t.Errorf("publish printed\n%s\nwant every document created", stdout)
	}
	c := ssm.NewFromConfig(lb.AWSConfig())
	desc, err := c.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String("Passport-Linux-Provision")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, aws.ToString(desc.Document.Hash)) {
		t.Errorf("publish does not print the hash SSM holds (%s):\n%s", aws.ToString(desc.Document.Hash), stdout)
	}

	stdout, stderr, err = passportRun(t, "documents", "publish")
	if err != nil || strings.Count(stdout, " unchanged ") != len(documents.Names()) {
		t.Fatalf("publishing again: %v\n%s%s", err, stdout, stderr)
	}
	if _, stderr, err := passportRun(t, "documents", "check"); err != nil {
		t.Fatalf("check after publishing: %v\n%s", err, stderr)
	}
}

// The reconciler runs as the service identity, which may send Passport's
// documents and not AWS-RunShellScript: with --documents it revokes, and
// without it SSM refuses the program and the grant stays to be retried.
func TestReconcileAsTheServiceThroughDocuments(t *testing.T) {
	ledgerURL, l := reconcileLab(t)
	if _, stderr, err := passportRun(t, "documents", "publish"); err != nil {
		t.Fatalf("publish as the operator: %v\n%s", err, stderr)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", os.Getenv("PASSPORT_LAB_SERVICE_ACCESS_KEY_ID"))
	t.Setenv("AWS_SECRET_ACCESS_KEY", os.Getenv("PASSPORT_LAB_SERVICE_SECRET_ACCESS_KEY"))

	_, stderr, err := passportRun(t, "reconcile", "--once", "--sweep=false", "--ledger", ledgerURL)
	if err == nil || !strings.Contains(stderr, "AccessDeniedException") || !strings.Contains(stderr, "AWS-RunShellScript") {
		t.Fatalf("reconcile as the service without --documents: %v\n%s", err, stderr)
	}
	if g, _ := l.Get(context.Background(), "ar-00000000000000c1"); g.State == ledger.Expired {
		t.Fatal("the grant was closed although no host was reached")
	}

	stdout, stderr, err := passportRun(t, "reconcile", "--once", "--sweep=false", "--documents", "--ledger", ledgerURL)
	if err != nil || !strings.Contains(stdout, "revoked 1,") {
		t.Fatalf("reconcile --documents as the service: %v\n%s%s", err, stdout, stderr)
	}
	if g, err := l.Get(context.Background(), "ar-00000000000000c1"); err != nil || g.State != ledger.Expired {
		t.Fatalf("grant after the pass: %s, %v; want expired", g.State, err)
	}
}
