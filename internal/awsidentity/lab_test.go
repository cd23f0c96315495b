package awsidentity

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
)

// testServerID is the server ID every test service signs with.
const testServerID = "https://passport.test.example"

// startLab starts a lab without hosts: its STS checks SigV4 and answers
// GetCallerIdentity for the key that signed.
func startLab(t testing.TB) *lab.Lab {
	t.Helper()
	return labtest.Start(t, lab.Options{})
}

// labVerifier is the service's side for a lab: its STS, its region, a
// one-process one-time-use store.
func labVerifier(l *lab.Lab) *Verifier {
	return &Verifier{
		STSEndpoint: l.Endpoint,
		Region:      l.Region,
		ServerID:    testServerID,
		Once:        (&MemoryOnce{}).Use,
	}
}

// sign is what a machine does: Sign with its own configuration for what
// the service's GET /v1/login/aws said.
func sign(t testing.TB, cfg aws.Config, v *Verifier) api.AWSLogin {
	t.Helper()
	login, err := Sign(context.Background(), cfg, v.Info())
	if err != nil {
		t.Fatal(err)
	}
	return login
}

// rawLogin is a login signed by the SDK's signer but shaped by the test:
// what a careless or hostile client could send. edit changes the request
// before it is signed.
type rawLogin struct {
	url, region, service, body string
	at                         time.Time
	edit                       func(*http.Request)
}

func (o rawLogin) sign(t testing.TB, creds aws.Credentials) api.AWSLogin {
	t.Helper()
	if o.body == "" {
		o.body = callerIdentityBody
	}
	if o.service == "" {
		o.service = "sts"
	}
	if o.at.IsZero() {
		o.at = time.Now()
	}
	req, err := http.NewRequest(http.MethodPost, o.url, strings.NewReader(o.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", formContentType)
	req.Header.Set(ServerIDHeader, testServerID)
	if o.edit != nil {
		o.edit(req)
	}
	sum := sha256.Sum256([]byte(o.body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), o.service, o.region, o.at.UTC()); err != nil {
		t.Fatal(err)
	}
	h := req.Header.Clone()
	h["Host"] = []string{req.URL.Host}
	h["Content-Length"] = []string{strconv.Itoa(len(o.body))}
	return api.AWSLogin{Method: http.MethodPost, URL: o.url, Headers: h, Body: base64.StdEncoding.EncodeToString([]byte(o.body))}
}

// labCredentials are the lab requester's: a machine with no AWS
// permission on the access path.
func labCredentials(t testing.TB, l *lab.Lab) aws.Credentials {
	t.Helper()
	c, err := l.AWSConfigAs(l.Requester).Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testCredentials are a machine's credentials where STS is not asked.
func testCredentials(t testing.TB) aws.Credentials {
	t.Helper()
	c, err := testConfig.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}
