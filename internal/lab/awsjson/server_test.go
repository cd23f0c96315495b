package awsjson

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/lab/sigv4"
)

const (
	testKey    = "AKIDLABAWSJSON000001"
	testSecret = "awsjson-test-secret-0123456789abcdefghij"
	region     = "us-east-1"
)

// lab is a Server with one SSM-shaped service whose operations the tests
// define, behind a real HTTP listener on loopback.
type lab struct {
	server *Server
	url    string
}

func newLab(t *testing.T, ops map[string]Operation) *lab {
	t.Helper()
	s := NewServer(Config{Region: region, Credentials: map[string]string{testKey: testSecret}})
	s.Register(Service{TargetPrefix: "AmazonSSM", SigningName: "ssm", Namespace: "com.amazonaws.ssm", Operations: ops})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &lab{server: s, url: srv.URL}
}

// noBackoff retries at once, so throttling tests need not wait the SDK's
// one-second throttle backoff.
type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func (l *lab) client(t *testing.T, secret string) *ssm.Client {
	t.Helper()
	return ssm.New(ssm.Options{
		Region:       region,
		BaseEndpoint: aws.String(l.url),
		Credentials:  credentials.NewStaticCredentialsProvider(testKey, secret, ""),
		Retryer:      retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff{} }),
	})
}

// post sends a signed request with an arbitrary body, for inputs the SDK
// would never produce.
func (l *lab) post(t *testing.T, target, contentType, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, l.url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", contentType)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ssm", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(out)
}

func describe(ctx context.Context, _ json.RawMessage) (any, error) {
	return map[string]any{"InstanceInformationList": []map[string]string{{"InstanceId": "i-0123456789abcdef0", "CallerKey": CallerAccessKey(ctx)}}}, nil
}

func TestSDKDecodesAnswersAndTypedErrors(t *testing.T) {
	var gotInput struct{ InstanceIds []string }
	l := newLab(t, map[string]Operation{
		"DescribeInstanceInformation": describe,
		"SendCommand": func(_ context.Context, in json.RawMessage) (any, error) {
			if err := Decode(in, &gotInput); err != nil {
				return nil, err
			}
			return nil, Errorf("InvalidInstanceId", "Instances %v not in a valid state", gotInput.InstanceIds)
		},
		"GetCommandInvocation": func(context.Context, json.RawMessage) (any, error) {
			return nil, errors.New("disk on fire at /var/lib/secret")
		},
		"CancelCommand": func(context.Context, json.RawMessage) (any, error) {
			panic("bug")
		},
	})
	c := l.client(t, testSecret)
	ctx := context.Background()

	out, err := c.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.InstanceInformationList) != 1 || aws.ToString(out.InstanceInformationList[0].InstanceId) != "i-0123456789abcdef0" {
		t.Fatalf("got %+v", out.InstanceInformationList)
	}
	if id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); !ok || len(id) != 36 {
		t.Fatalf("request id %q, want a UUID", id)
	}

	_, err = c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{"i-1"}})
	var invalid *types.InvalidInstanceId
	if !errors.As(err, &invalid) || invalid.ErrorMessage() != "Instances [i-1] not in a valid state" {
		t.Fatalf("got %v, want *types.InvalidInstanceId", err)
	}

	for name, call := range map[string]func() error{
		"plain error": func() error {
			_, err := c.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String("x"), InstanceId: aws.String("i-1")},
				func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
			return err
		},
		"panic": func() error {
			_, err := c.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: aws.String("x")}, func(o *ssm.Options) { o.RetryMaxAttempts = 1 })
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := call()
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != "InternalFailure" || api.ErrorFault() == smithy.FaultClient {
				t.Fatalf("got %v, want InternalFailure", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("internal detail leaked to the client: %v", err)
			}
		})
	}
}

func TestCallerAccessKeyReachesOperations(t *testing.T) {
	var caller string
	l := newLab(t, map[string]Operation{"ListCommands": func(ctx context.Context, _ json.RawMessage) (any, error) {
		caller = CallerAccessKey(ctx)
		return nil, nil
	}})
	if _, err := l.client(t, testSecret).ListCommands(context.Background(), &ssm.ListCommandsInput{}); err != nil {
		t.Fatal(err)
	}
	if caller != testKey {
		t.Fatalf("CallerAccessKey = %q, want %q", caller, testKey)
	}
}

func TestWrongSecretIsRefused(t *testing.T) {
	called := false
	l := newLab(t, map[string]Operation{"ListCommands": func(context.Context, json.RawMessage) (any, error) {
		called = true
		return nil, nil
	}})
	_, err := l.client(t, "not-the-secret").ListCommands(context.Background(), &ssm.ListCommandsInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "InvalidSignatureException" {
		t.Fatalf("got %v, want InvalidSignatureException", err)
	}
	if called {
		t.Fatal("the operation ran for a request with a wrong signature")
	}
	if n := l.server.Calls()["AmazonSSM.ListCommands"]; n != 0 {
		t.Fatalf("refused call counted %d times", n)
	}
}

func TestThrottlingIsRetriedBySDK(t *testing.T) {
	l := newLab(t, map[string]Operation{"DescribeInstanceInformation": describe})
	l.server.SetThrottleEvery(2)
	c := l.client(t, testSecret)
	ctx := context.Background()
	for i := range 3 {
		if _, err := c.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	// Calls 2 and 4 are throttled and retried: 3 successes take 5 calls.
	if got := l.server.Calls()["AmazonSSM.DescribeInstanceInformation"]; got != 5 {
		t.Fatalf("Calls() = %d, want 5 (3 answered, 2 throttled)", got)
	}

	l.server.SetThrottleEvery(1)
	_, err := c.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	var throttled *types.ThrottlingException
	if !errors.As(err, &throttled) {
		t.Fatalf("got %v, want *types.ThrottlingException once retries run out", err)
	}

	l.server.ResetCalls()
	if len(l.server.Calls()) != 0 {
		t.Fatalf("ResetCalls left %v", l.server.Calls())
	}
}

// TestLatencyDelaysEveryAnswer: with an hour of latency, a caller's
// deadline ends the wait for an answer and for an error alike; without
// it, both come.
func TestLatencyDelaysEveryAnswer(t *testing.T) {
	l := newLab(t, map[string]Operation{"DescribeInstanceInformation": describe})
	c := l.client(t, testSecret)
	calls := map[string]func(ctx context.Context) error{
		"an answer": func(ctx context.Context) error {
			_, err := c.DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
			return err
		},
		"an error": func(ctx context.Context) error {
			_, err := c.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: aws.String("x")})
			return err
		},
	}
	l.server.SetLatency(time.Hour)
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s an hour away, with a caller's deadline: %v, want the deadline exceeded", name, err)
		}
	}
	l.server.SetLatency(0)
	if err := calls["an answer"](context.Background()); err != nil {
		t.Errorf("without latency: %v", err)
	}
	var apiErr smithy.APIError
	if err := calls["an error"](context.Background()); !errors.As(err, &apiErr) {
		t.Errorf("without latency, CancelCommand (not registered): %v, want an AWS error", err)
	}
}

func TestBadRequestsGetAWSErrors(t *testing.T) {
	var decodeErr error
	l := newLab(t, map[string]Operation{
		"SendCommand": func(_ context.Context, in json.RawMessage) (any, error) {
			var v struct {
				InstanceIds    []string
				TimeoutSeconds int
			}
			decodeErr = Decode(in, &v)
			return nil, decodeErr
		},
	})
	const jsonType = "application/x-amz-json-1.1"
	tests := []struct {
		name, target, contentType, body string
		status                          int
		code, message                   string
	}{
		{"unknown operation", "AmazonSSM.LaunchRockets", jsonType, "{}", 400, "UnknownOperationException", `no operation "LaunchRockets"`},
		{"unknown service", "AmazonS3.GetObject", jsonType, "{}", 400, "UnknownOperationException", "names no service"},
		{"no target", "", jsonType, "{}", 400, "UnknownOperationException", "names no service"},
		{"not json", "AmazonSSM.SendCommand", jsonType, "{nope", 400, "SerializationException", "must be a JSON object"},
		{"array body", "AmazonSSM.SendCommand", jsonType, "[1,2]", 400, "SerializationException", "must be a JSON object"},
		{"null body", "AmazonSSM.SendCommand", jsonType, "null", 400, "SerializationException", "must be a JSON object"},
		{"trailing data", "AmazonSSM.SendCommand", jsonType, "{} {}", 400, "SerializationException", "after its JSON object"},
		{"wrong field type", "AmazonSSM.SendCommand", jsonType, `{"InstanceIds":"i-1"}`, 400, "SerializationException", "field InstanceIds (expected a list)"},
		{"wrong number type", "AmazonSSM.SendCommand", jsonType, `{"TimeoutSeconds":"60"}`, 400, "SerializationException", "field TimeoutSeconds (expected a number)"},
		{"wrong content type", "AmazonSSM.SendCommand", "text/plain", "{}", 400, "SerializationException", "Content-Type must be"},
		{"huge body", "AmazonSSM.SendCommand", jsonType, `{"Comment":"` + strings.Repeat("x", MaxBodyBytes) + `"}`, 413, "RequestEntityTooLargeException", "larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body := l.post(t, tt.target, tt.contentType, tt.body)
			var e struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("error body %q is not JSON: %v", body, err)
			}
			if status != tt.status || !strings.HasSuffix(e.Type, "#"+tt.code) || !strings.Contains(e.Message, tt.message) {
				t.Fatalf("got %d %s %q, want %d %s containing %q", status, e.Type, e.Message, tt.status, tt.code, tt.message)
			}
			if !strings.HasPrefix(header.Get("X-Amzn-ErrorType"), tt.code+":") || header.Get("X-Amzn-RequestId") == "" {
				t.Fatalf("headers %v lack X-Amzn-ErrorType %s or a request id", header, tt.code)
			}
		})
	}
}

func TestHandleServesOtherEndpoints(t *testing.T) {
	l := newLab(t, map[string]Operation{"DescribeInstanceInformation": describe})
	l.server.Handle("GET /ping", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "pong")
	}))
	l.server.Handle("POST /signed", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, err := l.server.Verify(r, "ssm")
		if err != nil {
			var e *Error
			errors.As(err, &e)
			http.Error(w, e.Code, http.StatusForbidden)
			return
		}
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, CallerAccessKey(r.Context())+" "+string(body))
	}))

	resp, err := http.Get(l.url + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "pong" {
		t.Fatalf("GET /ping = %q", b)
	}

	// Unsigned: refused by Verify.
	resp, err = http.Post(l.url+"/signed", "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "MissingAuthenticationTokenException") {
		t.Fatalf("unsigned POST /signed = %d %q", resp.StatusCode, b)
	}

	// Signed: reaches the handler with the body intact and the caller known.
	req, _ := http.NewRequest(http.MethodPost, l.url+"/signed", strings.NewReader("hello"))
	sum := sha256.Sum256([]byte("hello"))
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ssm", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != testKey+" hello" {
		t.Fatalf("signed POST /signed = %d %q", resp.StatusCode, b)
	}

	// JSON calls still reach the service.
	if _, err := l.client(t, testSecret).DescribeInstanceInformation(context.Background(), &ssm.DescribeInstanceInformationInput{}); err != nil {
		t.Fatal(err)
	}
}

func TestServicesAreRoutedByTargetAndSignedForTheirOwnScope(t *testing.T) {
	l := newLab(t, map[string]Operation{"DescribeInstanceInformation": describe})
	l.server.Register(Service{TargetPrefix: "TrentService", SigningName: "kms", Namespace: "com.amazonaws.kms",
		Operations: map[string]Operation{"DescribeKey": func(context.Context, json.RawMessage) (any, error) {
			return nil, Errorf("NotFoundException", "Key 'alias/x' does not exist")
		}}})

	// A request for KMS signed with SSM's scope is refused before KMS sees it.
	status, header, body := l.post(t, "TrentService.DescribeKey", "application/x-amz-json-1.1", "{}")
	if status != http.StatusBadRequest || !strings.Contains(body, "Credential should be scoped to correct service: 'kms'") {
		t.Fatalf("KMS call signed for ssm: %d %s", status, body)
	}
	if !strings.HasPrefix(header.Get("X-Amzn-ErrorType"), "InvalidSignatureException:") {
		t.Fatalf("X-Amzn-ErrorType = %q", header.Get("X-Amzn-ErrorType"))
	}

	// Signed for kms, it reaches KMS and its error carries KMS's namespace.
	req, _ := http.NewRequest(http.MethodPost, l.url+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "TrentService.DescribeKey")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256([]byte("{}"))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}, req, hex.EncodeToString(sum[:]), "kms", region, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(out), `"__type":"com.amazonaws.kms#NotFoundException"`) {
		t.Fatalf("KMS call signed for kms: %d %s", resp.StatusCode, out)
	}
	if got := l.server.Calls(); got["TrentService.DescribeKey"] != 1 {
		t.Fatalf("Calls() = %v", got)
	}
}

func TestTemporaryCredentials(t *testing.T) {
	l := newLab(t, map[string]Operation{"DescribeInstanceInformation": describe})
	const tempKey, tempSecret, token = "ASIALABTEMP000000009", "temporary-secret", "session-token-from-sts"
	l.server.AddCredentials(tempKey, sigv4.Credential{Secret: tempSecret, SessionToken: token, Expires: time.Now().Add(time.Hour)})
	client := func(tok string) *ssm.Client {
		return ssm.New(ssm.Options{Region: region, BaseEndpoint: aws.String(l.url),
			Credentials: credentials.NewStaticCredentialsProvider(tempKey, tempSecret, tok)})
	}
	ctx := context.Background()
	if _, err := client(token).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{}); err != nil {
		t.Fatalf("with the session token: %v", err)
	}
	_, err := client("").DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "UnrecognizedClientException" {
		t.Fatalf("without the session token: %v, want UnrecognizedClientException", err)
	}

	l.server.AddCredentials(tempKey, sigv4.Credential{Secret: tempSecret, SessionToken: token, Expires: time.Now().Add(-time.Second)})
	_, err = client(token).DescribeInstanceInformation(ctx, &ssm.DescribeInstanceInformationInput{})
	if !errors.As(err, &api) || api.ErrorCode() != "ExpiredTokenException" {
		t.Fatalf("after expiry: %v, want ExpiredTokenException", err)
	}
}

func TestDecodeMatchesMemberNamesExactly(t *testing.T) {
	type target struct {
		Key    string
		Values []string
	}
	type filter struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	var in struct {
		InstanceIds []string
		Targets     []target
		Filters     []filter
		Parameters  map[string][]target
	}
	body := `{"instanceids":["i-1"],"Targets":[{"key":"tag:a","Values":["1"]}],"Filters":[{"Key":"Status","value":"Failed"}],` +
		`"Parameters":{"p":[{"Key":"k","values":["v"]}]}}`
	if err := Decode(json.RawMessage(body), &in); err != nil {
		t.Fatal(err)
	}
	if in.InstanceIds != nil || in.Targets[0].Key != "" || in.Targets[0].Values[0] != "1" ||
		in.Filters[0].Key != "" || in.Filters[0].Value != "Failed" || in.Parameters["p"][0].Key != "k" || in.Parameters["p"][0].Values != nil {
		t.Fatalf("mis-cased members were taken: %+v", in)
	}
}

func TestDeniedActionIsRefusedAsAWSDoes(t *testing.T) {
	called := 0
	l := newLab(t, map[string]Operation{
		"StartSession": func(context.Context, json.RawMessage) (any, error) { called++; return nil, nil },
		"ListCommands": func(context.Context, json.RawMessage) (any, error) { called++; return nil, nil },
	})
	l.server.Deny(testKey, "ssm:StartSession")
	c := l.client(t, testSecret)
	_, err := c.StartSession(context.Background(), &ssm.StartSessionInput{Target: aws.String("i-0123456789abcdef0")})
	var denied *types.AccessDeniedException
	if !errors.As(err, &denied) || !strings.Contains(denied.ErrorMessage(), "is not authorized to perform: ssm:StartSession") {
		t.Fatalf("StartSession by a denied identity: %v, want AccessDeniedException naming ssm:StartSession", err)
	}
	if called != 0 {
		t.Fatal("the denied operation ran")
	}
	// Only that action is denied, and only for that key.
	if _, err := c.ListCommands(context.Background(), &ssm.ListCommandsInput{}); err != nil || called != 1 {
		t.Fatalf("ListCommands, which is not denied: %v", err)
	}
}
