package awsconfig

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// isolate keeps the machine's own AWS configuration out of a test.
func isolate(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for _, k := range []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_DYNAMODB"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIATEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "eu-west-1")
}

func TestEndpointsFromEnvironmentAndBlock(t *testing.T) {
	isolate(t)
	t.Setenv("AWS_ENDPOINT_URL_SSM", "http://127.0.0.1:4566")
	t.Setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:4567")
	c, err := Load(context.Background(), Settings{Endpoints: Endpoints{KMS: "https://kms.example.internal"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(c.SSM.Options().BaseEndpoint); got != "http://127.0.0.1:4566" {
		t.Errorf("SSM endpoint %q: AWS_ENDPOINT_URL_SSM was not honoured", got)
	}
	if got := aws.ToString(c.KMS.Options().BaseEndpoint); got != "https://kms.example.internal" {
		t.Errorf("KMS endpoint %q: the endpoints block must win over AWS_ENDPOINT_URL_KMS", got)
	}
	if got := c.STS.Options().BaseEndpoint; got != nil {
		t.Errorf("STS endpoint %q: nothing overrides it, so AWS's own must be used", *got)
	}
	if c.Config.Region != "eu-west-1" {
		t.Errorf("region %q, want AWS_REGION's", c.Config.Region)
	}
}

func TestSettingsErrorsNameTheField(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		name string
		s    Settings
		want string
	}{
		{"relative endpoint", Settings{Endpoints: Endpoints{SSM: "ssm.local"}}, "endpoints.ssm"},
		{"ftp endpoint", Settings{Endpoints: Endpoints{DynamoDB: "ftp://x"}}, "endpoints.dynamodb"},
		{"unknown profile", Settings{Profile: "nobody"}, `profile "nobody"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(context.Background(), tc.s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
	os.Unsetenv("AWS_REGION")
	t.Setenv("AWS_DEFAULT_REGION", "")
	os.Unsetenv("AWS_DEFAULT_REGION")
	if _, err := Load(context.Background(), Settings{}); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("no region anywhere: %v", err)
	}
}

// What the SDK logs itself goes to Passport's log, as JSON there, not as
// plain lines on stderr that break a log read line by line.
func TestTheSDKLogsThroughPassportsLog(t *testing.T) {
	isolate(t)
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	t.Cleanup(func() { slog.SetDefault(old) })

	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	cfg, err := LoadConfig(context.Background(), Settings{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.ClientLogMode = aws.LogRetries
	cfg.RetryMaxAttempts = 2
	c := sts.NewFromConfig(cfg, func(o *sts.Options) { o.BaseEndpoint = aws.String(failing.URL) })
	if _, err := c.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err == nil {
		t.Fatal("a call to a server that always fails succeeded")
	}
	if buf.Len() == 0 {
		t.Fatal("Passport's log is empty: the SDK logged its retry somewhere else")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	found := false
	for _, line := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if v["from"] == "aws-sdk" && strings.Contains(fmt.Sprint(v["msg"]), "retry") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the SDK's retry was not logged through Passport's log; it holds:\n%s", buf.String())
	}
}
