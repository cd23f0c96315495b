package ssm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

func TestParameterVersionsAndOverwrite(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	const name = "/passport/policy"
	put := func(in *ssm.PutParameterInput) (*ssm.PutParameterOutput, error) {
		return l.client.PutParameter(ctx, in)
	}
	out, err := put(&ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("permit-v1"), Type: types.ParameterTypeString})
	if err != nil || out.Version != 1 || out.Tier != types.ParameterTierStandard {
		t.Fatalf("first put: %v %+v", err, out)
	}
	_, err = put(&ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("permit-v2"), Type: types.ParameterTypeString})
	if !is[*types.ParameterAlreadyExists](err) {
		t.Fatalf("put without Overwrite: %v, want ParameterAlreadyExists", err)
	}
	l.clock.Advance(time.Minute)
	out, err = put(&ssm.PutParameterInput{Name: aws.String(name), Value: aws.String("permit-v2"), Overwrite: aws.Bool(true)})
	if err != nil || out.Version != 2 {
		t.Fatalf("overwrite: %v %+v", err, out)
	}

	got, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	p := got.Parameter
	if aws.ToString(p.Value) != "permit-v2" || p.Version != 2 || p.Type != types.ParameterTypeString ||
		aws.ToString(p.ARN) != "arn:aws:ssm:"+testRegion+":"+testAccount+":parameter/passport/policy" ||
		!aws.ToTime(p.LastModifiedDate).Equal(l.clock.Now()) || aws.ToString(p.DataType) != "text" {
		t.Fatalf("parameter = %+v", p)
	}
	old, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name + ":1")})
	if err != nil || aws.ToString(old.Parameter.Value) != "permit-v1" || aws.ToString(old.Parameter.Selector) != ":1" || aws.ToString(old.Parameter.Name) != name {
		t.Fatalf("version 1: %v %+v", err, old)
	}
	spaced, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("  " + name + " ")})
	if err != nil || aws.ToString(spaced.Parameter.Name) != name {
		t.Fatalf("spaces around a name are dropped: %v", err)
	}
	if _, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/passport/my policy")}); !is[*types.ValidationException](err) {
		t.Fatalf("a space inside a name: %v, want ValidationException", err)
	}
	byARN, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: p.ARN})
	if err != nil || aws.ToString(byARN.Parameter.Value) != "permit-v2" {
		t.Fatalf("by ARN: %v %+v", err, byARN)
	}
	_, err = l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name + ":9")})
	if !is[*types.ParameterVersionNotFound](err) {
		t.Fatalf("missing version: %v", err)
	}
	_, err = l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/passport/nothing")})
	if !is[*types.ParameterNotFound](err) {
		t.Fatalf("missing parameter: %v", err)
	}
}

func TestSecureStringIsSealedUnlessDecrypted(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	const secret = "ca-private-key-material"
	if _, err := l.client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/passport/ca"), Value: aws.String(secret), Type: types.ParameterTypeSecureString}); err != nil {
		t.Fatal(err)
	}
	sealed, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/passport/ca")})
	if err != nil {
		t.Fatal(err)
	}
	if v := aws.ToString(sealed.Parameter.Value); v == "" || strings.Contains(v, secret) || sealed.Parameter.Type != types.ParameterTypeSecureString {
		t.Fatalf("without WithDecryption the value is %q", v)
	}
	plain, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/passport/ca"), WithDecryption: aws.Bool(true)})
	if err != nil || aws.ToString(plain.Parameter.Value) != secret {
		t.Fatalf("with WithDecryption: %v %q", err, aws.ToString(plain.Parameter.Value))
	}
}

func TestPutParameterRefusesBadInput(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	if _, err := l.client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/exists"), Value: aws.String("x"), Type: types.ParameterTypeStringList}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   *ssm.PutParameterInput
		want func(error) bool
		msg  string
	}{
		{"no type on create", &ssm.PutParameterInput{Name: aws.String("/new"), Value: aws.String("x")}, is[*types.ValidationException], "A parameter type is required"},
		{"bad type", &ssm.PutParameterInput{Name: aws.String("/new"), Value: aws.String("x"), Type: "Blob"}, is[*types.ValidationException], "enum value set"},
		{"empty value", &ssm.PutParameterInput{Name: aws.String("/new"), Value: aws.String(""), Type: types.ParameterTypeString}, is[*types.ValidationException], "at 'value'"},
		{"reserved prefix", &ssm.PutParameterInput{Name: aws.String("/aws/x"), Value: aws.String("x"), Type: types.ParameterTypeString}, is[*types.ValidationException], `"aws" or "ssm"`},
		{"relative path", &ssm.PutParameterInput{Name: aws.String("team/x"), Value: aws.String("x"), Type: types.ParameterTypeString}, is[*types.ValidationException], "fully qualified"},
		{"bad characters", &ssm.PutParameterInput{Name: aws.String("/a b"), Value: aws.String("x"), Type: types.ParameterTypeString}, is[*types.ValidationException], "only letters"},
		{"too deep", &ssm.PutParameterInput{Name: aws.String(strings.Repeat("/a", 16)), Value: aws.String("x"), Type: types.ParameterTypeString}, is[*types.HierarchyLevelLimitExceededException], "16 hierarchy levels"},
		{"standard tier too long", &ssm.PutParameterInput{Name: aws.String("/big"), Value: aws.String(strings.Repeat("x", 4097)), Type: types.ParameterTypeString}, is[*types.ValidationException], "maximum parameter value of 4096"},
		{"advanced tier too long", &ssm.PutParameterInput{Name: aws.String("/big"), Value: aws.String(strings.Repeat("x", 8193)), Type: types.ParameterTypeString, Tier: types.ParameterTierAdvanced}, is[*types.ValidationException], "8192"},
		{"exists", &ssm.PutParameterInput{Name: aws.String("/exists"), Value: aws.String("y"), Type: types.ParameterTypeString}, is[*types.ParameterAlreadyExists], "overwrite"},
		{"pattern mismatch", &ssm.PutParameterInput{Name: aws.String("/p"), Value: aws.String("abc"), Type: types.ParameterTypeString, AllowedPattern: aws.String("^[0-9]+$")}, is[*types.ParameterPatternMismatchException], "allowedPattern"},
		{"space inside the name", &ssm.PutParameterInput{Name: aws.String("/team/my name"), Value: aws.String("x"), Type: types.ParameterTypeString}, is[*types.ValidationException], "only letters"},
		{"name too long with its ARN", &ssm.PutParameterInput{Name: aws.String("/" + strings.Repeat("n", 1000)), Value: aws.String("x"), Type: types.ParameterTypeString}, is[*types.ValidationException], "too long"},
		{"reference to another parameter", &ssm.PutParameterInput{Name: aws.String("/ref"), Value: aws.String("{{ssm:/other}}"), Type: types.ParameterTypeString}, is[*types.ValidationException], "double brackets"},
		{"key id on a string", &ssm.PutParameterInput{Name: aws.String("/k"), Value: aws.String("abc"), Type: types.ParameterTypeString, KeyId: aws.String("alias/mine")}, is[*types.ValidationException], "KeyId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.client.PutParameter(ctx, tt.in)
			if !tt.want(err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want an error containing %q", err, tt.msg)
			}
		})
	}
	out, err := l.client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/big"), Value: aws.String(strings.Repeat("x", 5000)), Type: types.ParameterTypeString, Tier: types.ParameterTierIntelligentTiering})
	if err != nil || out.Tier != types.ParameterTierAdvanced {
		t.Fatalf("intelligent tiering of a large value: %v %+v", err, out)
	}
}

func TestParameterKeepsAtMost100Versions(t *testing.T) {
	l := newLab(t)
	ctx := context.Background()
	for i := range 102 {
		if _, err := l.client.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/v"), Value: aws.String("x"), Type: types.ParameterTypeString, Overwrite: aws.Bool(i > 0)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/v:2")}); !is[*types.ParameterVersionNotFound](err) {
		t.Fatalf("version 2 of 102 should be gone: %v", err)
	}
	if out, err := l.client.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/v:3")}); err != nil || out.Parameter.Version != 3 {
		t.Fatalf("version 3 of 102 should remain: %v", err)
	}
}
