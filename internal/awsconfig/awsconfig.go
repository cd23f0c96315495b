// Package awsconfig builds the AWS clients Passport uses the way the AWS
// provider does: the SDK's standard credential chain, region and profile,
// AWS_ENDPOINT_URL_* environment overrides, and an explicit endpoints block
// that wins over all of them. The provider and the CLI share it, so a lab
// endpoint works the same way for both.
package awsconfig

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
)

// Endpoints overrides the URL of individual services. Empty fields keep the
// SDK's own resolution (AWS_ENDPOINT_URL_<SERVICE>, then AWS itself).
type Endpoints struct {
	SSM         string
	KMS         string
	STS         string
	SSMMessages string
	DynamoDB    string
	EC2         string
	// S3 is where session recordings are kept (collect.NewStore).
	S3 string
}

// Settings is what a provider block or CLI flags say about AWS. Empty
// fields fall back to the SDK's defaults.
type Settings struct {
	Region    string
	Profile   string
	Endpoints Endpoints
	// Credentials, when set, replace the SDK's credential chain: a process
	// that acts as two identities (the lab, a test of the service beside
	// its callers) names each one.
	Credentials aws.CredentialsProvider
}

// Clients holds one client per service, all from one configuration.
type Clients struct {
	Config    aws.Config
	Endpoints Endpoints
	SSM       *ssm.Client
	KMS       *kms.Client
	STS       *sts.Client
	DynamoDB  *dynamodb.Client
	EC2       *ec2.Client
}

// Load resolves the configuration and builds the clients. It makes no AWS
// call: a wrong credential shows up on first use, named by the service.
func Load(ctx context.Context, s Settings) (*Clients, error) {
	if err := s.Endpoints.validate(); err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(ctx, s)
	if err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region is set: set region in the provider block, or AWS_REGION, or a region in your AWS profile")
	}
	e := s.Endpoints
	return &Clients{
		Config:    cfg,
		Endpoints: e,
		SSM:       ssm.NewFromConfig(cfg, func(o *ssm.Options) { override(&o.BaseEndpoint, e.SSM) }),
		KMS:       kms.NewFromConfig(cfg, func(o *kms.Options) { override(&o.BaseEndpoint, e.KMS) }),
		STS:       sts.NewFromConfig(cfg, func(o *sts.Options) { override(&o.BaseEndpoint, e.STS) }),
		DynamoDB:  dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { override(&o.BaseEndpoint, e.DynamoDB) }),
		EC2:       ec2.NewFromConfig(cfg, func(o *ec2.Options) { override(&o.BaseEndpoint, e.EC2) }),
	}, nil
}

// LoadConfig resolves the SDK configuration s describes (credentials,
// profile, region when there is one) without building clients or asking
// for a region: what a machine signing in to the Passport service needs,
// since the service names the region to sign for.
func LoadConfig(ctx context.Context, s Settings) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if s.Region != "" {
		opts = append(opts, config.WithRegion(s.Region))
	}
	if s.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(s.Profile))
	}
	if s.Credentials != nil {
		opts = append(opts, config.WithCredentialsProvider(s.Credentials))
	}
	opts = append(opts, config.WithLogger(sdkLogger{}))
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		var missing config.SharedConfigProfileNotExistError
		if errors.As(err, &missing) {
			return aws.Config{}, fmt.Errorf("AWS profile %q is not in the shared config or credentials file: fix profile or AWS_PROFILE", missing.Profile)
		}
		return aws.Config{}, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	return cfg, nil
}

// sdkLogger passes what the SDK itself has to say (a retry it gave up on,
// a response body it could not drain) to Passport's log, so it comes out
// in the same form as everything else: the SDK's own logger writes plain
// lines to stderr, which break a JSON log a collector reads line by line.
type sdkLogger struct{}

func (sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	slog.Default().Log(context.Background(), level, fmt.Sprintf(format, v...), "from", "aws-sdk")
}

// override sets a client's BaseEndpoint only when the endpoints block names
// one. The SDK has already resolved AWS_ENDPOINT_URL_<SERVICE> into it when
// the option functions run, so assigning an empty value would erase that.
func override(base **string, u string) {
	if u != "" {
		*base = aws.String(u)
	}
}

func (e Endpoints) validate() error {
	for _, f := range []struct{ name, value string }{
		{"ssm", e.SSM}, {"kms", e.KMS}, {"sts", e.STS}, {"ssmmessages", e.SSMMessages}, {"dynamodb", e.DynamoDB}, {"ec2", e.EC2}, {"s3", e.S3},
	} {
		if f.value == "" {
			continue
		}
		u, err := url.Parse(f.value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("endpoints.%s = %q is not an absolute http(s) URL: write it like https://ssm.eu-west-1.amazonaws.com", f.name, f.value)
		}
	}
	return nil
}
