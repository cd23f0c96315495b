package sts

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	stssdk "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

func TestGetCallerIdentity(t *testing.T) {
	srv := awsjson.NewServer(awsjson.Config{Region: "eu-west-1", Credentials: map[string]string{
		"AKIAKNOWN":  "known-secret",
		"AKIANOBODY": "nobody-secret",
	}})
	s := New(srv)
	s.SetIdentity("AKIAKNOWN", Identity{Arn: "arn:aws:iam::123456789012:user/alice", UserID: "AIDAALICE", Account: "123456789012"})
	srv.Handle("POST /{$}", s)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)

	client := func(key, secret string) *stssdk.Client {
		return stssdk.New(stssdk.Options{
			Region:       "eu-west-1",
			BaseEndpoint: aws.String(ts.URL),
			Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		})
	}
	ctx := context.Background()

	out, err := client("AKIAKNOWN", "known-secret").GetCallerIdentity(ctx, &stssdk.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.Arn) != "arn:aws:iam::123456789012:user/alice" || aws.ToString(out.Account) != "123456789012" || aws.ToString(out.UserId) != "AIDAALICE" {
		t.Errorf("GetCallerIdentity = %s %s %s", aws.ToString(out.Arn), aws.ToString(out.Account), aws.ToString(out.UserId))
	}

	for _, tc := range []struct {
		name, key, secret, code string
	}{
		{"wrong secret", "AKIAKNOWN", "guess", "SignatureDoesNotMatch"},
		{"unknown key", "AKIASTRANGER", "x", "InvalidClientTokenId"},
		{"valid key with no identity", "AKIANOBODY", "nobody-secret", "InvalidClientTokenId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := client(tc.key, tc.secret).GetCallerIdentity(ctx, &stssdk.GetCallerIdentityInput{})
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
		})
	}
}
