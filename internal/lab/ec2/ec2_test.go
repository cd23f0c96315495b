package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

const (
	key    = "AKIALABTEST000000001"
	secret = "lab-secret"
	web1   = "i-0123456789abcdef0"
	web2   = "i-0fedcba9876543210"
)

var tags = map[string]map[string]string{
	web1: {"Name": "web-1", "Env": "staging", "Team": "platform", "aws:cloudformation:stack-name": "web"},
	web2: {"Name": "web-2", "Env": "production", "Team": "platform"},
}

// start serves the lab's EC2 beside a stand-in for STS on one endpoint,
// routed as the lab routes them, and returns a real EC2 client for it.
func start(t *testing.T, secretKey string) *ec2.Client {
	t.Helper()
	return startSkewed(t, secretKey, 0)
}

// startSkewed is start with the server's clock skew ahead of real time,
// which the SDK signs with.
func startSkewed(t *testing.T, secretKey string, skew time.Duration) *ec2.Client {
	t.Helper()
	srv := awsjson.NewServer(awsjson.Config{Region: "us-east-1", Credentials: map[string]string{key: secret},
		Now: func() time.Time { return time.Now().Add(skew) }})
	svc := New(srv, func() map[string]map[string]string { return tags })
	sts := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "sts", http.StatusTeapot) })
	srv.Handle("POST /{$}", Route(svc, sts))
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return ec2.New(ec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(ts.URL),
		Credentials:  credentials.NewStaticCredentialsProvider(key, secretKey, ""),
	})
}

func TestDescribeTagsPagesThroughInstances(t *testing.T) {
	c := start(t, secret)
	p := ec2.NewDescribeTagsPaginator(c, &ec2.DescribeTagsInput{
		Filters: []types.Filter{
			{Name: aws.String("resource-type"), Values: []string{"instance"}},
			{Name: aws.String("resource-id"), Values: []string{web1, web2, "i-00000000000000009"}},
		},
		MaxResults: aws.Int32(5),
	})
	got := map[string]map[string]string{}
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tg := range page.Tags {
			if tg.ResourceType != types.ResourceTypeInstance {
				t.Errorf("resource type %q", tg.ResourceType)
			}
			id := aws.ToString(tg.ResourceId)
			if got[id] == nil {
				got[id] = map[string]string{}
			}
			got[id][aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
	}
	if pages != 2 {
		t.Errorf("7 tags at 5 a page came in %d pages", pages)
	}
	if fmt.Sprint(got) != fmt.Sprint(tags) {
		t.Errorf("tags\n got %v\nwant %v", got, tags)
	}
}

func TestDescribeTagsKeyFilter(t *testing.T) {
	c := start(t, secret)
	out, err := c.DescribeTags(context.Background(), &ec2.DescribeTagsInput{Filters: []types.Filter{
		{Name: aws.String("resource-id"), Values: []string{web1, web2}},
		{Name: aws.String("key"), Values: []string{"Env"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tags) != 2 || aws.ToString(out.Tags[0].Value) != "staging" || aws.ToString(out.Tags[1].Value) != "production" {
		t.Errorf("Env tags: %+v", out.Tags)
	}
}

// TestDescribeTagsFilters: every filter AWS documents for DescribeTags,
// alone, with wildcards, and together.
func TestDescribeTagsFilters(t *testing.T) {
	c := start(t, secret)
	f := func(name string, values ...string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: values}
	}
	tests := []struct {
		name    string
		filters []types.Filter
		want    []string // resource:key=value, in the answer's order
	}{
		{"none: every tag of the account", nil, []string{
			web1 + ":Env=staging", web1 + ":Name=web-1", web1 + ":Team=platform", web1 + ":aws:cloudformation:stack-name=web",
			web2 + ":Env=production", web2 + ":Name=web-2", web2 + ":Team=platform"}},
		{"key only", []types.Filter{f("key", "Env")}, []string{web1 + ":Env=staging", web2 + ":Env=production"}},
		{"key wildcard", []types.Filter{f("key", "aws:*")}, []string{web1 + ":aws:cloudformation:stack-name=web"}},
		{"value", []types.Filter{f("value", "platform")}, []string{web1 + ":Team=platform", web2 + ":Team=platform"}},
		{"value wildcard", []types.Filter{f("value", "web-?")}, []string{web1 + ":Name=web-1", web2 + ":Name=web-2"}},
		{"tag:<key>", []types.Filter{f("tag:Env", "production")}, []string{web2 + ":Env=production"}},
		{"tag:<key> with several values", []types.Filter{f("tag:Env", "production", "staging")}, []string{web1 + ":Env=staging", web2 + ":Env=production"}},
		{"tag:<key> and value that disagree", []types.Filter{f("tag:Env", "production"), f("value", "staging")}, nil},
		{"resource-id and key", []types.Filter{f("resource-id", web2), f("key", "Name", "Env")}, []string{web2 + ":Env=production", web2 + ":Name=web-2"}},
		{"another resource type", []types.Filter{f("resource-type", "volume")}, nil},
		{"an escaped wildcard is literal", []types.Filter{f("value", `web\*`)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := c.DescribeTags(context.Background(), &ec2.DescribeTagsInput{Filters: tt.filters})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tg := range out.Tags {
				got = append(got, aws.ToString(tg.ResourceId)+":"+aws.ToString(tg.Key)+"="+aws.ToString(tg.Value))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

// TestSignatureRefusalsAsEC2AnswersThem: EC2's codes and statuses, which
// differ from the JSON services': 401 AuthFailure, RequestExpired past its
// 15 minutes of allowed skew.
func TestSignatureRefusalsAsEC2AnswersThem(t *testing.T) {
	ctx := context.Background()
	status := func(err error) int {
		var resp *awshttp.ResponseError
		if errors.As(err, &resp) {
			return resp.HTTPStatusCode()
		}
		return 0
	}
	_, err := start(t, "not-the-secret").DescribeTags(ctx, &ec2.DescribeTagsInput{})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "AuthFailure" || status(err) != http.StatusUnauthorized {
		t.Errorf("a wrong secret: %v (HTTP %d); want AuthFailure, 401", err, status(err))
	}
	if _, err := startSkewed(t, secret, 10*time.Minute).DescribeTags(ctx, &ec2.DescribeTagsInput{}); err != nil {
		t.Errorf("a clock 10 minutes off: %v; EC2 allows 15", err)
	}
	_, err = startSkewed(t, secret, 16*time.Minute).DescribeTags(ctx, &ec2.DescribeTagsInput{})
	if !errors.As(err, &api) || api.ErrorCode() != "RequestExpired" || status(err) != http.StatusBadRequest {
		t.Errorf("a clock 16 minutes off: %v (HTTP %d); want RequestExpired, 400", err, status(err))
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		in     *ec2.DescribeTagsInput
		code   string
	}{
		{"wrong secret", "not-the-secret", &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{web1}}}}, "AuthFailure"},
		{"unknown filter", secret, &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{web1}}, {Name: aws.String("owner"), Values: []string{"x"}}}}, "InvalidParameterValue"},
		{"bad token", secret, &ec2.DescribeTagsInput{NextToken: aws.String("zz"), Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{web1}}}}, "InvalidNextToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := start(t, tt.secret).DescribeTags(context.Background(), tt.in)
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tt.code {
				t.Fatalf("error %v, want code %s", err, tt.code)
			}
		})
	}
}

// Requests signed for another service reach the other handler.
func TestRouteLeavesOtherServicesAlone(t *testing.T) {
	srv := awsjson.NewServer(awsjson.Config{Region: "us-east-1", Credentials: map[string]string{key: secret}})
	other := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := Route(New(srv, nil), other)
	r := httptest.NewRequest("POST", "/", nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+key+"/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusTeapot {
		t.Errorf("an STS request went to EC2 (status %d)", w.Code)
	}
}
