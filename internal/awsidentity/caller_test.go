package awsidentity

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	stssdk "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/lab"
)

func TestCaller(t *testing.T) {
	l := startLab(t)
	arn, err := Caller(context.Background(), stssdk.NewFromConfig(l.AWSConfig()))
	if err != nil || arn != lab.OperatorARN {
		t.Fatalf("Caller = %q, %v; want %q", arn, err, lab.OperatorARN)
	}

	cfg := l.AWSConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider("AKIAUNKNOWNUNKNOWN00", "nope", "")
	cfg.RetryMaxAttempts = 1
	_, err = Caller(context.Background(), stssdk.NewFromConfig(cfg))
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidClientTokenId" ||
		!strings.HasPrefix(err.Error(), "STS GetCallerIdentity failed, so the request cannot name its requester: ") {
		t.Fatalf("Caller with unknown credentials: %v", err)
	}
}

// noARN stands in for an STS that answers without an ARN, which AWS's
// own never does.
type noARN struct{}

func (noARN) GetCallerIdentity(context.Context, *stssdk.GetCallerIdentityInput, ...func(*stssdk.Options)) (*stssdk.GetCallerIdentityOutput, error) {
	return &stssdk.GetCallerIdentityOutput{Account: aws.String("123456789012")}, nil
}

func TestCallerWithoutARN(t *testing.T) {
	if arn, err := Caller(context.Background(), noARN{}); err == nil || !strings.Contains(err.Error(), "without an ARN") {
		t.Fatalf("Caller = %q, %v; want an error", arn, err)
	}
}
