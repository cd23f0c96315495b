package lab

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWSConfig is what an AWS SDK client needs to reach this lab: its region,
// its one endpoint for every service and the credentials it checks
// signatures against. ssm.NewFromConfig(l.AWSConfig()) is the real SDK
// client a person's tools would build from Env.
func (l *Lab) AWSConfig() aws.Config {
	return aws.Config{
		Region:       l.Region,
		BaseEndpoint: aws.String(l.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(l.AccessKeyID, l.SecretAccessKey, ""),
	}
}
