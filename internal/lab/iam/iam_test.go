package iam

import (
	"strings"
	"testing"
)

func mustParse(t *testing.T, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestParseRefusesWhatItCannotEvaluate(t *testing.T) {
	ok := `{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"ssm:SendCommand","Resource":"*"}]}`
	mustParse(t, ok)
	tests := map[string]struct{ doc, says string }{
		"old version":             {strings.Replace(ok, "2012-10-17", "2008-10-17", 1), "Version"},
		"no statement":            {`{"Version":"2012-10-17","Statement":[]}`, "no Statement"},
		"not JSON":                {`Version: 2012-10-17`, "not a JSON object"},
		"unknown top-level field": {`{"Version":"2012-10-17","Statment":[]}`, "Statment"},
		"NotAction":               {strings.Replace(ok, `"Action"`, `"NotAction"`, 1), "NotAction"},
		"Principal":               {strings.Replace(ok, `"Sid":"A",`, `"Sid":"A","Principal":"*",`, 1), "Principal"},
		"effect":                  {strings.Replace(ok, "Allow", "allow", 1), "Effect"},
		"action without service":  {strings.Replace(ok, "ssm:SendCommand", "SendCommand", 1), "service:Operation"},
		"no resource":             {strings.Replace(ok, `,"Resource":"*"`, ``, 1), "Resource is missing"},
		"resource not an ARN":     {strings.Replace(ok, `"*"`, `"document/Passport-Linux-Check"`, 1), "not an ARN"},
		"other variable":          {strings.Replace(ok, `"*"`, `"arn:aws:ssm:*:${aws:username}:document/x"`, 1), "${aws:username}"},
		"sid with a dash":         {strings.Replace(ok, `"A"`, `"A-1"`, 1), "Sid"},
		"sid twice":               {`{"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"s3:GetObject","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"s3:GetObject","Resource":"*"}]}`, "twice"},
		"condition operator":      {strings.Replace(ok, `"Resource":"*"`, `"Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`, 1), "IpAddress"},
		"condition key":           {strings.Replace(ok, `"Resource":"*"`, `"Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"x"}}`, 1), "aws:PrincipalTag/team"},
		"null that is not a bool": {strings.Replace(ok, `"Resource":"*"`, `"Resource":"*","Condition":{"Null":{"aws:ResourceTag/a":"maybe"}}`, 1), "Null"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got %v, want an error saying %q", err, tt.says)
			}
		})
	}
}

const policy = `{
  "Version": "2012-10-17",
  "Statement": [
    {"Sid": "Describe", "Effect": "Allow", "Action": "ssm:Describe*", "Resource": "*"},
    {"Sid": "SendOurs", "Effect": "Allow", "Action": "ssm:SendCommand",
     "Resource": ["arn:aws:ssm:*:${aws:PrincipalAccount}:document/Passport-Linux-?rovision", "arn:aws:ec2:*:${aws:PrincipalAccount}:instance/*"]},
    {"Sid": "NotThatOne", "Effect": "Deny", "Action": "ssm:SendCommand", "Resource": "arn:aws:ec2:*:*:instance/i-0000000000000dead"},
    {"Sid": "Sign", "Effect": "Allow", "Action": ["kms:Sign"], "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*",
     "Condition": {"Null": {"aws:ResourceTag/passport:certificate-authority": "false"}, "StringLike": {"aws:ResourceTag/Env": ["prod*", "staging"]}}}
  ]
}`

func TestDecide(t *testing.T) {
	p := mustParse(t, policy)
	doc := func(name string) Resource {
		return Resource{ARN: "arn:aws:ssm:us-east-1:123456789012:document/" + name}
	}
	inst := func(id string) Resource { return Resource{ARN: "arn:aws:ec2:us-east-1:123456789012:instance/" + id} }
	key := func(tags map[string]string) Resource {
		return Resource{ARN: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", Tags: tags}
	}
	ca := map[string]string{"passport:certificate-authority": "prod", "Env": "production"}
	tests := []struct {
		name     string
		req      Request
		allowed  bool
		explicit bool
		resource string
	}{
		{"a wildcard action", Request{Action: "ssm:DescribeInstanceInformation"}, true, false, ""},
		{"actions ignore case", Request{Action: "SSM:describeinstanceinformation"}, true, false, ""},
		{"an action no statement names", Request{Action: "ssm:GetParameter"}, false, false, "*"},
		{"a resource-less action against ARNs", Request{Action: "ssm:SendCommand", Account: "123456789012"}, false, false, "*"},
		{"our document on our instances", Request{Action: "ssm:SendCommand", Account: "123456789012",
			Resources: []Resource{doc("Passport-Linux-Provision"), inst("i-0123456789abcdef0"), inst("i-0123456789abcdef1")}}, true, false, ""},
		{"AWS's script document", Request{Action: "ssm:SendCommand", Account: "123456789012",
			Resources: []Resource{{ARN: "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"}, inst("i-0123456789abcdef0")}}, false, false, "arn:aws:ssm:us-east-1::document/AWS-RunShellScript"},
		{"our document name in another account", Request{Action: "ssm:SendCommand", Account: "123456789012",
			Resources: []Resource{{ARN: "arn:aws:ssm:us-east-1:999999999999:document/Passport-Linux-Provision"}}}, false, false, "arn:aws:ssm:us-east-1:999999999999:document/Passport-Linux-Provision"},
		{"? is one character", Request{Action: "ssm:SendCommand", Account: "123456789012", Resources: []Resource{doc("Passport-Linux-XXrovision")}}, false, false, doc("Passport-Linux-XXrovision").ARN},
		{"a denied instance among allowed ones", Request{Action: "ssm:SendCommand", Account: "123456789012",
			Resources: []Resource{doc("Passport-Linux-Provision"), inst("i-0123456789abcdef0"), inst("i-0000000000000dead")}}, false, true, inst("i-0000000000000dead").ARN},
		{"a tagged key", Request{Action: "kms:Sign", Account: "123456789012", Resources: []Resource{key(ca)}}, true, false, ""},
		{"tag keys ignore case", Request{Action: "kms:Sign", Account: "123456789012", Resources: []Resource{key(map[string]string{"Passport:Certificate-Authority": "x", "env": "staging"})}}, true, false, ""},
		{"an untagged key", Request{Action: "kms:Sign", Account: "123456789012", Resources: []Resource{key(nil)}}, false, false, key(nil).ARN},
		{"a tag value StringLike refuses", Request{Action: "kms:Sign", Account: "123456789012", Resources: []Resource{key(map[string]string{"passport:certificate-authority": "x", "Env": "dev"})}}, false, false, key(nil).ARN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := p.Decide(tt.req)
			if d.Allowed != tt.allowed || d.Explicit != tt.explicit || d.Resource != tt.resource {
				t.Fatalf("Decide = %+v, want allowed %v explicit %v resource %q", d, tt.allowed, tt.explicit, tt.resource)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"*", "anything:at/all", true}, {"a*c", "abbbc", true}, {"a*c", "abbb", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*-*-*", "a-b-c", true}, {"x", "X", false}, {"", "", true},
	} {
		if got := glob(tt.pattern, tt.s); got != tt.want {
			t.Errorf("glob(%q, %q) = %v", tt.pattern, tt.s, got)
		}
	}
}

// FuzzParse: any input either parses or is refused, never panics, and a
// parsed policy decides without panicking.
func FuzzParse(f *testing.F) {
	f.Add([]byte(policy))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:*","Resource":"arn:aws:s:r:a:*","Condition":{"Null":{"aws:ResourceTag/x":"true"}}}]}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := Parse(doc)
		if err != nil {
			return
		}
		p.Decide(Request{Action: "ssm:SendCommand", Account: "123456789012", Resources: []Resource{{ARN: "arn:aws:ssm:us-east-1:123456789012:document/Passport-Linux-Check", Tags: map[string]string{"x": "y"}}}})
	})
}
