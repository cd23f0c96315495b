package ssm

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// putAll stores String parameters (SecureString for names ending in
// "secret"), each tagged Team=platform.
func (l *lab) putAll(names ...string) {
	l.t.Helper()
	for _, name := range names {
		typ := types.ParameterTypeString
		if strings.HasSuffix(name, "secret") {
			typ = types.ParameterTypeSecureString
		}
		_, err := l.client.PutParameter(context.Background(), &ssm.PutParameterInput{
			Name: aws.String(name), Value: aws.String("value of " + name), Type: typ,
			Tags: []types.Tag{{Key: aws.String("Team"), Value: aws.String("platform")}},
		})
		if err != nil {
			l.t.Fatalf("PutParameter %s: %v", name, err)
		}
	}
}

func TestGetParametersAnswersWhatItCanAndListsTheRest(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	l.putAll("/app/url", "/app/secret")
	if _, err := l.client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/app/url"), Value: aws.String("v2"), Overwrite: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	out, err := l.client.GetParameters(ctx, &ssm.GetParametersInput{
		Names:          []string{"/app/url:1", "/app/missing", "/app/secret", "/app/url:7", "/app/url"},
		WithDecryption: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range out.Parameters {
		got = append(got, aws.ToString(p.Name)+aws.ToString(p.Selector)+"="+aws.ToString(p.Value))
	}
	want := []string{"/app/url:1=value of /app/url", "/app/secret=value of /app/secret", "/app/url=v2"}
	if !slices.Equal(got, want) {
		t.Errorf("Parameters %v, want %v", got, want)
	}
	if !slices.Equal(out.InvalidParameters, []string{"/app/missing", "/app/url:7"}) {
		t.Errorf("InvalidParameters %v, want the missing name and the missing version", out.InvalidParameters)
	}

	sealed, err := l.client.GetParameters(ctx, &ssm.GetParametersInput{Names: []string{"/app/secret"}})
	if err != nil || len(sealed.Parameters) != 1 || strings.Contains(aws.ToString(sealed.Parameters[0].Value), "value of") {
		t.Errorf("a SecureString without WithDecryption: %v %+v", err, sealed)
	}

	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = "/app/url"
	}
	if _, err := l.client.GetParameters(ctx, &ssm.GetParametersInput{Names: eleven}); !is[*types.ValidationException](err) {
		t.Errorf("eleven names: %v, want ValidationException (at most 10)", err)
	}
}

func TestGetParametersByPath(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	l.putAll("/app/a", "/app/b", "/app/c/deep", "/app/c/secret", "/application/x", "/other/y", "top")

	byPath := func(in *ssm.GetParametersByPathInput) []string {
		t.Helper()
		var names []string
		// The SDK's paginator follows NextToken as a client would.
		p := ssm.NewGetParametersByPathPaginator(l.client, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("GetParametersByPath %s: %v", aws.ToString(in.Path), err)
			}
			if in.MaxResults != nil && len(out.Parameters) > int(*in.MaxResults) {
				t.Fatalf("a page of %d with MaxResults %d", len(out.Parameters), *in.MaxResults)
			}
			for _, p := range out.Parameters {
				names = append(names, aws.ToString(p.Name))
			}
		}
		return names
	}
	tests := []struct {
		name string
		in   *ssm.GetParametersByPathInput
		want []string
	}{
		{"one level", &ssm.GetParametersByPathInput{Path: aws.String("/app")}, []string{"/app/a", "/app/b"}},
		{"trailing slash", &ssm.GetParametersByPathInput{Path: aws.String("/app/")}, []string{"/app/a", "/app/b"}},
		{"recursive, in pages of one", &ssm.GetParametersByPathInput{Path: aws.String("/app"), Recursive: aws.Bool(true), MaxResults: aws.Int32(1)},
			[]string{"/app/a", "/app/b", "/app/c/deep", "/app/c/secret"}},
		{"root", &ssm.GetParametersByPathInput{Path: aws.String("/")}, []string{"top"}},
		{"type filter", &ssm.GetParametersByPathInput{Path: aws.String("/"), Recursive: aws.Bool(true),
			ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Type"), Values: []string{"SecureString"}}}}, []string{"/app/c/secret"}},
		{"label filter", &ssm.GetParametersByPathInput{Path: aws.String("/app"),
			ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Label"), Values: []string{"prod"}}}}, nil},
		{"nothing there", &ssm.GetParametersByPathInput{Path: aws.String("/nothing")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := byPath(tt.in); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	out, err := l.client.GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/app/c"), WithDecryption: aws.Bool(true)})
	if err != nil || len(out.Parameters) != 2 || aws.ToString(out.Parameters[1].Value) != "value of /app/c/secret" {
		t.Fatalf("WithDecryption: %v %+v", err, out)
	}

	bad := []struct {
		name string
		in   *ssm.GetParametersByPathInput
		want func(error) bool
	}{
		{"relative path", &ssm.GetParametersByPathInput{Path: aws.String("app")}, is[*types.ValidationException]},
		{"max results 11", &ssm.GetParametersByPathInput{Path: aws.String("/app"), MaxResults: aws.Int32(11)}, is[*types.ValidationException]},
		{"name filter", &ssm.GetParametersByPathInput{Path: aws.String("/app"),
			ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Name"), Values: []string{"/app/a"}}}}, is[*types.InvalidFilterKey]},
		{"bad option", &ssm.GetParametersByPathInput{Path: aws.String("/app"),
			ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Label"), Option: aws.String("BeginsWith"), Values: []string{"p"}}}}, is[*types.InvalidFilterOption]},
		{"bad type", &ssm.GetParametersByPathInput{Path: aws.String("/app"),
			ParameterFilters: []types.ParameterStringFilter{{Key: aws.String("Type"), Values: []string{"Blob"}}}}, is[*types.InvalidFilterValue]},
		{"foreign token", &ssm.GetParametersByPathInput{Path: aws.String("/app"), NextToken: aws.String(l.svc.pages.Token("GetParametersByPath:/other", "/other/a"))}, is[*types.InvalidNextToken]},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.client.GetParametersByPath(ctx, tt.in); !tt.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestDeleteParameter(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	l.putAll("/gone", "/kept")
	if _, err := l.client.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/gone")}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/gone")}); !is[*types.ParameterNotFound](err) {
		t.Fatalf("after DeleteParameter, GetParameter: %v; want ParameterNotFound", err)
	}
	if _, err := l.client.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String("/gone")}); !is[*types.ParameterNotFound](err) {
		t.Fatalf("deleting twice: %v; want ParameterNotFound", err)
	}
	// A deleted name can be created again, from version 1.
	l.putAll("/gone")
	if out, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/gone")}); err != nil || out.Parameter.Version != 1 {
		t.Fatalf("re-created: %v %+v", err, out)
	}
	batch, err := l.client.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: []string{"/kept", "/never"}})
	if err != nil || !slices.Equal(batch.DeletedParameters, []string{"/kept"}) || !slices.Equal(batch.InvalidParameters, []string{"/never"}) {
		t.Fatalf("DeleteParameters: %v %+v", err, batch)
	}
}

func TestDescribeParameters(t *testing.T) {
	l := newLab(t, func(c *Config) {
		c.Caller = func(context.Context) string { return "arn:aws:iam::" + testAccount + ":user/alice" }
	})
	ctx := context.Background()
	l.putAll("/app/a", "/app/b", "/app/c/deep", "/app/c/secret", "/other/y", "top")

	describe := func(in *ssm.DescribeParametersInput) []types.ParameterMetadata {
		t.Helper()
		var all []types.ParameterMetadata
		p := ssm.NewDescribeParametersPaginator(l.client, in)
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("DescribeParameters: %v", err)
			}
			all = append(all, out.Parameters...)
		}
		return all
	}
	names := func(ps []types.ParameterMetadata) []string {
		var out []string
		for _, p := range ps {
			out = append(out, aws.ToString(p.Name))
		}
		return out
	}
	filter := func(key, option string, values ...string) []types.ParameterStringFilter {
		f := types.ParameterStringFilter{Key: aws.String(key), Values: values}
		if option != "" {
			f.Option = aws.String(option)
		}
		return []types.ParameterStringFilter{f}
	}

	all := describe(&ssm.DescribeParametersInput{MaxResults: aws.Int32(2)})
	if got := names(all); !slices.Equal(got, []string{"/app/a", "/app/b", "/app/c/deep", "/app/c/secret", "/other/y", "top"}) {
		t.Fatalf("every parameter, in pages of two: %v", got)
	}
	secret := all[3]
	if secret.Type != types.ParameterTypeSecureString || aws.ToString(secret.KeyId) != "alias/aws/ssm" || secret.Version != 1 ||
		secret.Tier != types.ParameterTierStandard || aws.ToString(secret.LastModifiedUser) != "arn:aws:iam::"+testAccount+":user/alice" ||
		!strings.HasSuffix(aws.ToString(secret.ARN), ":parameter/app/c/secret") || secret.LastModifiedDate == nil {
		t.Errorf("metadata of /app/c/secret: %+v", secret)
	}

	tests := []struct {
		name string
		in   *ssm.DescribeParametersInput
		want []string
	}{
		{"name equals", &ssm.DescribeParametersInput{ParameterFilters: filter("Name", "", "/app/b", "top")}, []string{"/app/b", "top"}},
		{"name begins with", &ssm.DescribeParametersInput{ParameterFilters: filter("Name", "BeginsWith", "/app/c")}, []string{"/app/c/deep", "/app/c/secret"}},
		{"name contains", &ssm.DescribeParametersInput{ParameterFilters: filter("Name", "Contains", "ee")}, []string{"/app/c/deep"}},
		{"path one level", &ssm.DescribeParametersInput{ParameterFilters: filter("Path", "", "/app")}, []string{"/app/a", "/app/b"}},
		{"path recursive", &ssm.DescribeParametersInput{ParameterFilters: filter("Path", "Recursive", "/app/c")}, []string{"/app/c/deep", "/app/c/secret"}},
		{"type", &ssm.DescribeParametersInput{ParameterFilters: filter("Type", "Equals", "SecureString")}, []string{"/app/c/secret"}},
		{"tag", &ssm.DescribeParametersInput{ParameterFilters: filter("tag:Team", "", "platform")}, []string{"/app/a", "/app/b", "/app/c/deep", "/app/c/secret", "/other/y", "top"}},
		{"other tag value", &ssm.DescribeParametersInput{ParameterFilters: filter("tag:Team", "", "billing")}, nil},
		{"legacy filter", &ssm.DescribeParametersInput{Filters: []types.ParametersFilter{{Key: types.ParametersFilterKeyName, Values: []string{"/other/y"}}}}, []string{"/other/y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := names(describe(tt.in)); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}

	bad := []struct {
		name string
		in   *ssm.DescribeParametersInput
		want func(error) bool
	}{
		{"both kinds of filter", &ssm.DescribeParametersInput{ParameterFilters: filter("Type", "", "String"),
			Filters: []types.ParametersFilter{{Key: types.ParametersFilterKeyName, Values: []string{"top"}}}}, is[*types.ValidationException]},
		{"label", &ssm.DescribeParametersInput{ParameterFilters: filter("Label", "", "prod")}, is[*types.InvalidFilterKey]},
		{"unknown key", &ssm.DescribeParametersInput{ParameterFilters: filter("Owner", "", "me")}, is[*types.ValidationException]},
		{"contains on type", &ssm.DescribeParametersInput{ParameterFilters: filter("Type", "Contains", "String")}, is[*types.InvalidFilterOption]},
		{"relative path", &ssm.DescribeParametersInput{ParameterFilters: filter("Path", "Recursive", "app")}, is[*types.InvalidFilterValue]},
		{"max results 51", &ssm.DescribeParametersInput{MaxResults: aws.Int32(51)}, is[*types.ValidationException]},
		{"forged token", &ssm.DescribeParametersInput{NextToken: aws.String("x.y")}, is[*types.InvalidNextToken]},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.client.DescribeParameters(ctx, tt.in); !tt.want(err) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
