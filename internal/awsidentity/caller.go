package awsidentity

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// CallerIdentityAPI is the one STS call Caller makes; *sts.Client has it.
type CallerIdentityAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, optFns ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// Caller returns the ARN of the credentials client signs with, as STS
// answers it: the requester in direct mode, where the process acts with
// its own AWS identity. The ARN is not normalised (an assumed role keeps
// its sts assumed-role form and session name).
func Caller(ctx context.Context, client CallerIdentityAPI) (string, error) {
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("STS GetCallerIdentity failed, so the request cannot name its requester: %w", err)
	}
	if aws.ToString(out.Arn) == "" {
		return "", errors.New("STS GetCallerIdentity answered without an ARN, so the request cannot name its requester: check the STS endpoint the provider uses")
	}
	return aws.ToString(out.Arn), nil
}
