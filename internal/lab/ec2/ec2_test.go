package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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
	srv := awsjson.NewServer(awsjson.Config{Region: "us-east-1", Credentials: map[string]string{key: secret}})
	svc := New(srv, func(id string) (map[string]string, bool) { m, ok := tags[id]; return m, ok })
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

func TestRefusals(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		in     *ec2.DescribeTagsInput
		code   string
	}{
		{"wrong secret", "not-the-secret", &ec2.DescribeTagsInput{Filters: []types.Filter{{Name: aws.String("resource-id"), Values: []string{web1}}}}, "AuthFailure"},
		{"no resource-id filter", secret, &ec2.DescribeTagsInput{}, "InvalidParameterValue"},
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
