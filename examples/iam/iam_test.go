package iam

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/passport-access/terraform-provider-passport/internal/documents"
	labiam "github.com/passport-access/terraform-provider-passport/internal/lab/iam"
)

// clients are the real SDK clients of the services the policies name: an
// action is known when the client has an operation of that name.
var clients = map[string]reflect.Type{
	"ssm":      reflect.TypeFor[*ssm.Client](),
	"kms":      reflect.TypeFor[*kms.Client](),
	"ec2":      reflect.TypeFor[*ec2.Client](),
	"dynamodb": reflect.TypeFor[*dynamodb.Client](),
	"s3":       reflect.TypeFor[*s3.Client](),
}

// iamOnly are IAM actions named otherwise than the operation they allow.
var iamOnly = map[string]string{
	"s3:ListBucket":                "ListObjectsV2",
	"s3:PutLifecycleConfiguration": "PutBucketLifecycleConfiguration",
}

// resourceTypes are the ARN shapes each service's actions may name, as in
// the Service Authorization Reference.
var resourceTypes = map[string]*regexp.Regexp{
	"ssm":      regexp.MustCompile(`^arn:aws:(ssm:\*:(\$\{aws:PrincipalAccount\})?:(document|parameter|session|managed-instance)/[A-Za-z0-9_.*/-]+|ec2:\*:\$\{aws:PrincipalAccount\}:instance/\*)$`),
	"kms":      regexp.MustCompile(`^arn:aws:kms:\*:\$\{aws:PrincipalAccount\}:key/\*$`),
	"dynamodb": regexp.MustCompile(`^arn:aws:dynamodb:\*:\$\{aws:PrincipalAccount\}:table/[A-Za-z0-9_.-]+(/index/\*)?$`),
	"s3":       regexp.MustCompile(`^arn:aws:s3:::[a-z0-9.-]+(/[A-Za-z0-9_./*-]+)?$`),
}

type policyDoc struct {
	Version   string
	Statement []struct {
		Sid       string
		Effect    string
		Action    any
		Resource  any
		Condition map[string]map[string]string
	}
}

func list(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// Both shipped policies are valid IAM: the grammar, every action a real
// operation of its service, every resource an ARN of a type that action
// takes. The lab parses the same bytes it enforces.
func TestShippedPoliciesAreValidIAM(t *testing.T) {
	for name, raw := range map[string][]byte{"passport-service.json": Service, "passport-requester.json": Requester, "passport-instance.json": Instance} {
		t.Run(name, func(t *testing.T) {
			var p policyDoc
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				t.Fatal(err)
			}
			if p.Version != "2012-10-17" || len(p.Statement) == 0 {
				t.Fatalf("Version %q, %d statements", p.Version, len(p.Statement))
			}
			sids := map[string]bool{}
			for _, st := range p.Statement {
				if !regexp.MustCompile(`^[A-Za-z0-9]+$`).MatchString(st.Sid) || sids[st.Sid] {
					t.Errorf("Sid %q is missing, not alphanumeric or repeated", st.Sid)
				}
				sids[st.Sid] = true
				if st.Effect != "Allow" && st.Effect != "Deny" {
					t.Errorf("%s: Effect %q", st.Sid, st.Effect)
				}
				actions, resources := list(st.Action), list(st.Resource)
				if len(actions) == 0 || len(resources) == 0 {
					t.Fatalf("%s: Action and Resource are required", st.Sid)
				}
				for _, a := range actions {
					service, op, _ := strings.Cut(a, ":")
					client, ok := clients[service]
					switch {
					case !ok:
						t.Errorf("%s: %s is not a service Passport uses", st.Sid, a)
					case op == "*":
					case iamOnly[a] != "":
						if _, ok := client.MethodByName(iamOnly[a]); !ok {
							t.Errorf("%s: %s allows %s, which is not an operation of %s", st.Sid, a, iamOnly[a], service)
						}
					default:
						if _, ok := client.MethodByName(op); !ok {
							t.Errorf("%s: %s is not an operation of %s", st.Sid, a, service)
						}
					}
					for _, r := range resources {
						if re := resourceTypes[service]; r != "*" && (re == nil || !re.MatchString(r)) {
							t.Errorf("%s: %s is not an ARN %s's actions take", st.Sid, r, service)
						}
					}
				}
			}
			if _, err := labiam.Parse(raw); err != nil {
				t.Fatalf("the lab cannot enforce it: %v", err)
			}
		})
	}
}

// The service may send Passport's documents, on instances, and nothing
// else; the requester may not send anything.
func TestServiceSendsPassportDocumentsOnly(t *testing.T) {
	var p policyDoc
	if err := json.Unmarshal(Service, &p); err != nil {
		t.Fatal(err)
	}
	var docs []string
	for _, st := range p.Statement {
		if st.Effect != "Allow" {
			t.Errorf("%s: the service policy only allows", st.Sid)
		}
		actions := list(st.Action)
		if slices.Contains(actions, "ssm:*") || slices.Contains(actions, "*") {
			t.Errorf("%s: allows every action", st.Sid)
		}
		if !slices.Contains(actions, "ssm:SendCommand") {
			continue
		}
		for _, r := range list(st.Resource) {
			_, name, ok := strings.Cut(r, ":document/")
			switch {
			case ok:
				docs = append(docs, name)
			case !strings.HasSuffix(r, ":instance/*") && !strings.HasSuffix(r, ":managed-instance/*"):
				t.Errorf("%s: ssm:SendCommand on %s, which is neither Passport's document nor an instance", st.Sid, r)
			}
		}
	}
	if !slices.Equal(docs, documents.Names()) {
		t.Fatalf("ssm:SendCommand is allowed on documents %v; want exactly Passport's %v", docs, documents.Names())
	}
	for _, forbidden := range []string{"AWS-RunShellScript", "AWS-RunPowerShellScript", "Passport-*"} {
		if bytes.Contains(Service, []byte(`document/`+forbidden+`"`)) {
			t.Errorf("the service policy names %s", forbidden)
		}
	}

	requester, err := labiam.Parse(Requester)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{"arn:aws:ssm:us-east-1::document/AWS-RunShellScript", "arn:aws:ssm:us-east-1:123456789012:document/Passport-Linux-Provision"} {
		d := requester.Decide(labiam.Request{Action: "ssm:SendCommand", Account: "123456789012", Resources: []labiam.Resource{{ARN: doc}}})
		if d.Allowed || !d.Explicit {
			t.Errorf("the requester policy does not deny sending %s: %+v", doc, d)
		}
	}
}
