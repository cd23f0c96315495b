package lab

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	shipped "github.com/passport-access/terraform-provider-passport/examples/iam"
	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/iam"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sigv4"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sts"
)

// Credentials is one identity's access key and who STS says it is.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	ARN             string
}

// The lab's identities, as GetCallerIdentity names them. The service
// signs as a session of its role, as it would on an instance or task role.
const (
	ServiceRoleARN = "arn:aws:iam::" + AccountID + ":role/passport-service"
	ServiceARN     = "arn:aws:sts::" + AccountID + ":assumed-role/passport-service/passport"
	RequesterARN   = "arn:aws:iam::" + AccountID + ":user/requester"
)

// addIdentities makes the lab's three identities and gives each its
// permissions and its STS identity:
//   - the operator may do anything (it sets the lab up, and is who direct
//     mode runs as);
//   - the service may do what examples/iam/passport-service.json allows,
//     read from the very file Passport ships, and nothing else;
//   - the requester is someone who gets access through Passport:
//     examples/iam/passport-requester.json denies the access path, and no
//     policy allows anything else. GetCallerIdentity works for all three,
//     as on AWS.
func (l *Lab) addIdentities() error {
	service, err := iam.Parse(shipped.Service)
	if err != nil {
		return fmt.Errorf("lab: examples/iam/passport-service.json: %w", err)
	}
	requester, err := iam.Parse(shipped.Requester)
	if err != nil {
		return fmt.Errorf("lab: examples/iam/passport-requester.json: %w", err)
	}
	l.Operator = Credentials{AccessKeyID: l.AccessKeyID, SecretAccessKey: l.SecretAccessKey, ARN: OperatorARN}
	l.Service = Credentials{AccessKeyID: accessKeyID(), SecretAccessKey: secret(), ARN: ServiceARN}
	l.Requester = Credentials{AccessKeyID: accessKeyID(), SecretAccessKey: secret(), ARN: RequesterARN}
	for _, id := range []struct {
		c      Credentials
		userID string
		policy *iam.Policy
	}{
		{l.Operator, "AIDA" + l.Operator.AccessKeyID[4:], nil},
		{l.Service, "AROA" + l.Service.AccessKeyID[4:] + ":passport", service},
		{l.Requester, "AIDA" + l.Requester.AccessKeyID[4:], requester},
	} {
		l.Server.AddCredentials(id.c.AccessKeyID, sigv4.Credential{Secret: id.c.SecretAccessKey})
		l.Server.SetPrincipal(id.c.AccessKeyID, awsjson.Principal{ARN: id.c.ARN, Policy: id.policy})
		l.STS.SetIdentity(id.c.AccessKeyID, sts.Identity{Arn: id.c.ARN, UserID: id.userID, Account: AccountID})
	}
	return nil
}

// AWSConfigAs is AWSConfig with c's credentials: the SDK configuration of
// the service or the requester.
func (l *Lab) AWSConfigAs(c Credentials) aws.Config {
	cfg := l.AWSConfig()
	cfg.Credentials = credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")
	return cfg
}

// identityEnv is how env.sh names the service's and the requester's
// credentials; the operator's are AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY.
func (l *Lab) identityEnv() []string {
	return []string{
		"PASSPORT_LAB_SERVICE_ACCESS_KEY_ID=" + l.Service.AccessKeyID,
		"PASSPORT_LAB_SERVICE_SECRET_ACCESS_KEY=" + l.Service.SecretAccessKey,
		"PASSPORT_LAB_SERVICE_ARN=" + l.Service.ARN,
		"PASSPORT_LAB_REQUESTER_ACCESS_KEY_ID=" + l.Requester.AccessKeyID,
		"PASSPORT_LAB_REQUESTER_SECRET_ACCESS_KEY=" + l.Requester.SecretAccessKey,
		"PASSPORT_LAB_REQUESTER_ARN=" + l.Requester.ARN,
	}
}

// agentPut is how a lab host's agent writes Run Command output to S3: with
// the instance's role, whose policy is examples/iam/passport-instance.json,
// the file Passport ships for instance profiles.
func agentPut(s3 interface {
	Put(bucket, key string, data []byte) error
}) (func(bucket, key string, data []byte) error, error) {
	role, err := iam.Parse(shipped.Instance)
	if err != nil {
		return nil, fmt.Errorf("lab: examples/iam/passport-instance.json: %w", err)
	}
	return func(bucket, key string, data []byte) error {
		arn := "arn:aws:s3:::" + bucket + "/" + key
		if d := role.Decide(iam.Request{Action: "s3:PutObject", Resources: []iam.Resource{{ARN: arn}}, Account: AccountID}); !d.Allowed {
			return fmt.Errorf("AccessDenied: the instance's role (examples/iam/passport-instance.json) may not s3:PutObject on %s", arn)
		}
		return s3.Put(bucket, key, data)
	}, nil
}
