package kms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awscli"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// TestCancelKeyDeletionThenEnable walks what Passport's own error message
// tells a person to do with a CA key scheduled for deletion.
func TestCancelKeyDeletionThenEnable(t *testing.T) {
	c, _ := newLab(t)
	ctx := context.Background()
	md := createKey(t, c, types.KeySpecEccNistP256)
	sign := func() error {
		_, err := c.Sign(ctx, &kms.SignInput{KeyId: md.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		return err
	}
	state := func() types.KeyState {
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId})
		if err != nil {
			t.Fatal(err)
		}
		return d.KeyMetadata.KeyState
	}

	_, err := c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: md.KeyId})
	wantCode(t, err, "KMSInvalidStateException")
	if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: md.KeyId})
	wantCode(t, err, "KMSInvalidStateException")
	out, err := c.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: md.KeyId})
	if err != nil || aws.ToString(out.KeyId) != aws.ToString(md.Arn) {
		t.Fatalf("CancelKeyDeletion: %v %+v", err, out)
	}
	if s := state(); s != types.KeyStateDisabled {
		t.Fatalf("after CancelKeyDeletion the key is %s, want Disabled (as on AWS)", s)
	}
	wantCode(t, sign(), "DisabledException")
	if _, err := c.EnableKey(ctx, &kms.EnableKeyInput{KeyId: md.KeyId}); err != nil {
		t.Fatal(err)
	}
	if s := state(); s != types.KeyStateEnabled {
		t.Fatalf("after EnableKey the key is %s", s)
	}
	if err := sign(); err != nil {
		t.Fatalf("Sign after EnableKey: %v", err)
	}
	if _, err := c.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.KeyId}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, sign(), "DisabledException")
}

func TestListKeysAndAliases(t *testing.T) {
	c, clk := newLab(t)
	ctx := context.Background()
	var ids []string
	for range 5 {
		ids = append(ids, *createKey(t, c, types.KeySpecEccNistP256).KeyId)
	}
	slices.Sort(ids)
	for i, name := range []string{"alias/ca-b", "alias/ca-a", "alias/ca-c"} {
		if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: aws.String(ids[i%2])}); err != nil {
			t.Fatal(err)
		}
	}

	listKeys := func() []string {
		var got []string
		p := kms.NewListKeysPaginator(c, &kms.ListKeysInput{Limit: aws.Int32(2)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListKeys: %v", err)
			}
			if len(out.Keys) > 2 || out.Truncated != (out.NextMarker != nil) {
				t.Fatalf("a page of %d keys, Truncated %v, NextMarker %v", len(out.Keys), out.Truncated, out.NextMarker)
			}
			for _, k := range out.Keys {
				if !strings.HasSuffix(aws.ToString(k.KeyArn), ":key/"+aws.ToString(k.KeyId)) {
					t.Errorf("key %s has ARN %s", aws.ToString(k.KeyId), aws.ToString(k.KeyArn))
				}
				got = append(got, aws.ToString(k.KeyId))
			}
		}
		return got
	}
	if got := listKeys(); !slices.Equal(got, ids) {
		t.Fatalf("ListKeys in pages of 2: %v, want %v", got, ids)
	}

	listAliases := func(in *kms.ListAliasesInput) []string {
		var got []string
		p := kms.NewListAliasesPaginator(c, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListAliases: %v", err)
			}
			for _, a := range out.Aliases {
				if aws.ToString(a.AliasArn) != "arn:aws:kms:"+region+":"+account+":"+aws.ToString(a.AliasName) || a.CreationDate == nil {
					t.Errorf("alias entry %+v", a)
				}
				got = append(got, aws.ToString(a.AliasName)+"->"+aws.ToString(a.TargetKeyId))
			}
		}
		return got
	}
	want := []string{"alias/ca-a->" + ids[1], "alias/ca-b->" + ids[0], "alias/ca-c->" + ids[0]}
	if got := listAliases(&kms.ListAliasesInput{Limit: aws.Int32(1)}); !slices.Equal(got, want) {
		t.Fatalf("ListAliases in pages of 1: %v, want %v", got, want)
	}
	if got := listAliases(&kms.ListAliasesInput{KeyId: aws.String(ids[0])}); !slices.Equal(got, want[1:]) {
		t.Fatalf("ListAliases of %s: %v, want %v", ids[0], got, want[1:])
	}

	_, err := c.ListAliases(ctx, &kms.ListAliasesInput{Limit: aws.Int32(101)})
	wantCode(t, err, "ValidationException")
	_, err = c.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1001)})
	wantCode(t, err, "ValidationException")
	_, err = c.ListKeys(ctx, &kms.ListKeysInput{Marker: aws.String("forged.marker")})
	wantCode(t, err, "InvalidMarkerException")
	_, err = c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String("alias/ca-a")})
	wantCode(t, err, "InvalidArnException")
	_, err = c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String("00000000-0000-4000-8000-000000000000")})
	wantCode(t, err, "NotFoundException")

	// A key past its deletion date is gone from the listing, and its
	// aliases with it.
	if _, err := c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(ids[0]), PendingWindowInDays: aws.Int32(7)}); err != nil {
		t.Fatal(err)
	}
	if got := listKeys(); !slices.Equal(got, ids) {
		t.Fatalf("a key pending deletion is still listed: %v", got)
	}
	clk.Advance(7 * 24 * time.Hour)
	if got := listKeys(); !slices.Equal(got, ids[1:]) {
		t.Fatalf("after the deletion date ListKeys gives %v, want %v", got, ids[1:])
	}
	if got := listAliases(&kms.ListAliasesInput{}); !slices.Equal(got, want[:1]) {
		t.Fatalf("after the deletion date ListAliases gives %v, want %v", got, want[:1])
	}
}

// TestAWSCLIKeyDeletion runs the commands Passport's error for a CA key
// pending deletion names, with the AWS CLI a person would use.
func TestAWSCLIKeyDeletion(t *testing.T) {
	if err := awscli.Find(); err != nil {
		t.Skip(err)
	}
	server := awsjson.NewServer(awsjson.Config{Region: region, Credentials: map[string]string{accessKey: secretKey}})
	server.Register(New(Config{Region: region, AccountID: account}).API())
	srv := httptest.NewServer(server)
	t.Cleanup(srv.Close)
	cli := awscli.CLI{Endpoint: srv.URL, Region: region, AccessKeyID: accessKey, SecretAccessKey: secretKey, Dir: t.TempDir()}
	run := func(args ...string) map[string]any {
		t.Helper()
		out, stderr, err := cli.Run(append([]string{"kms"}, args...)...)
		if err != nil {
			t.Fatalf("aws kms %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		got := map[string]any{}
		if strings.TrimSpace(out) != "" {
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("aws kms %s printed %q", args[0], out)
			}
		}
		return got
	}
	created := run("create-key", "--key-spec", "ECC_NIST_P256", "--key-usage", "SIGN_VERIFY")
	id := fmt.Sprint(created["KeyMetadata"].(map[string]any)["KeyId"])
	run("create-alias", "--alias-name", "alias/passport-ca", "--target-key-id", id)
	run("schedule-key-deletion", "--key-id", "alias/passport-ca", "--pending-window-in-days", "7")
	run("cancel-key-deletion", "--key-id", id)
	run("enable-key", "--key-id", id)
	if state := run("describe-key", "--key-id", "alias/passport-ca")["KeyMetadata"].(map[string]any)["KeyState"]; state != "Enabled" {
		t.Fatalf("after cancel-key-deletion and enable-key the key is %v", state)
	}
	aliases := run("list-aliases", "--page-size", "1")["Aliases"].([]any)
	if len(aliases) != 1 || aliases[0].(map[string]any)["TargetKeyId"] != id {
		t.Fatalf("list-aliases: %v", aliases)
	}
	if keys := run("list-keys")["Keys"].([]any); len(keys) != 1 {
		t.Fatalf("list-keys: %v", keys)
	}
}
