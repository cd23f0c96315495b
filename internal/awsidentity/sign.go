package awsidentity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/passport-access/terraform-provider-passport/internal/api"
)

// ServerIDHeader carries the service's ServerID in a login request. It
// must be among the signed headers, so a request signed for one Passport
// service cannot be used at another.
const ServerIDHeader = "X-Passport-Server-ID"

// NonceHeader carries a random value Sign adds and signs. SigV4 is
// deterministic to the second, so without it two logins one machine makes
// in the same second would be the same signature, and the second would be
// refused as a replay of the first.
const NonceHeader = "X-Passport-Nonce"

// The one request a login may carry: sts:GetCallerIdentity, which needs
// no permission and tells only who signed it.
const (
	callerIdentityBody = "Action=GetCallerIdentity&Version=2011-06-15"
	formContentType    = "application/x-www-form-urlencoded; charset=utf-8"
	signingName        = "sts"
)

var errAnonymous = errors.New("the AWS credentials to sign in with are anonymous: set AWS_PROFILE, the AWS_ACCESS_KEY_ID pair, or run with an instance or task role")

// Sign makes the login a machine sends to the Passport service: a POST
// sts:GetCallerIdentity request to the STS endpoint info names, with the
// service's ID in ServerIDHeader, signed with SigV4 and cfg's credentials
// (a session token too, when they have one). Nothing is sent to AWS; the
// service does that. The login is good for one use within a few minutes.
func Sign(ctx context.Context, cfg aws.Config, info api.AWSLoginInfo) (api.AWSLogin, error) {
	endpoint, err := parseEndpoint(info.STSEndpoint)
	if err != nil {
		return api.AWSLogin{}, fmt.Errorf("the Passport service's sts_endpoint %w", err)
	}
	if info.ServerID == "" {
		return api.AWSLogin{}, errors.New("the Passport service named no server_id to sign for: its AWS sign-in is not configured")
	}
	if strings.ContainsAny(info.ServerID, "\r\n") {
		return api.AWSLogin{}, errors.New("the Passport service's server_id has a line break, which no HTTP header can carry")
	}
	if info.Region == "" {
		return api.AWSLogin{}, errors.New("the Passport service named no region to sign for: its AWS sign-in is not configured")
	}
	if _, anonymous := cfg.Credentials.(aws.AnonymousCredentials); anonymous {
		return api.AWSLogin{}, errAnonymous
	}
	if cfg.Credentials == nil {
		return api.AWSLogin{}, errors.New("no AWS credentials to sign in with: set AWS_PROFILE, the AWS_ACCESS_KEY_ID pair, or run with an instance or task role")
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return api.AWSLogin{}, fmt.Errorf("reading the AWS credentials to sign in with: %w", err)
	}
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return api.AWSLogin{}, errAnonymous
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint.String(), strings.NewReader(callerIdentityBody))
	if err != nil {
		return api.AWSLogin{}, err
	}
	req.Header.Set("Content-Type", formContentType)
	req.Header.Set(ServerIDHeader, info.ServerID)
	req.Header.Set(NonceHeader, rand.Text())
	sum := sha256.Sum256([]byte(callerIdentityBody))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), signingName, info.Region, time.Now().UTC()); err != nil {
		return api.AWSLogin{}, fmt.Errorf("signing the AWS sign-in request: %w", err)
	}

	// The signer signs Host and Content-Length from the request's fields,
	// which Go keeps out of the header map; the service needs them as
	// headers to check and send the same request.
	headers := req.Header.Clone()
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers["Host"] = []string{host}
	headers["Content-Length"] = []string{strconv.Itoa(len(callerIdentityBody))}
	return api.AWSLogin{
		Method:  http.MethodPost,
		URL:     endpoint.String(),
		Headers: headers,
		Body:    base64.StdEncoding.EncodeToString([]byte(callerIdentityBody)),
	}, nil
}
