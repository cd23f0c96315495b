package awsjson

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

// BenchmarkSignedCall measures one SDK call through the server (signing,
// SigV4 verification, dispatch, error-free answer) against a plain POST of
// the same body to a bare handler on the same loopback, measured in the
// same run. x_plain_http is the ratio of the two.
func BenchmarkSignedCall(b *testing.B) {
	s := NewServer(Config{Region: region, Credentials: map[string]string{testKey: testSecret}})
	s.Register(Service{TargetPrefix: "AmazonSSM", SigningName: "ssm", Namespace: "com.amazonaws.ssm",
		Operations: map[string]Operation{"DescribeInstanceInformation": func(context.Context, json.RawMessage) (any, error) { return nil, nil }}})
	srv := httptest.NewServer(s)
	defer srv.Close()
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "{}")
	}))
	defer bare.Close()

	client := ssm.New(ssm.Options{Region: region, BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(testKey, testSecret, "")})
	ctx := context.Background()
	plain := bare.Client()

	start := time.Now()
	for range b.N {
		resp, err := plain.Post(bare.URL, "application/x-amz-json-1.1", strings.NewReader("{}"))
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	baseline := time.Since(start)

	b.ResetTimer()
	start = time.Now()
	for range b.N {
		if _, err := client.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start))/float64(baseline), "x_plain_http")
}
