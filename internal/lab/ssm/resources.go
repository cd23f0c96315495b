package ssm

import (
	"encoding/json"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/iam"
)

// Resources names what a call acts on, as IAM sees it, for the callers'
// policies (awsjson.Service.Resources): SendCommand acts on its document
// and each instance, StartSession on its instance and document, the
// document operations on the document, the parameter operations on each
// parameter, a session's operations on the session; the rest act on "*".
// AWS's own documents have no account in their ARN.
func (s *Service) Resources(operation string, input json.RawMessage) []iam.Resource {
	var in struct {
		DocumentName, Name, Target, SessionId, Path string
		InstanceIds, Names                          []string
		Targets                                     []target
	}
	// Member names must match exactly, as for the operation itself, or a
	// differently cased duplicate could show the policy one document and
	// run another.
	if awsjson.Decode(input, &in) != nil {
		return nil
	}
	switch operation {
	case "SendCommand":
		out := []iam.Resource{{ARN: s.documentARN(in.DocumentName)}}
		for _, id := range in.InstanceIds {
			out = append(out, iam.Resource{ARN: s.instanceARN(id)})
		}
		if len(in.Targets) > 0 {
			out = append(out, iam.Resource{ARN: "arn:aws:ec2:" + s.region + ":" + s.account + ":instance/*"})
		}
		return out
	case "StartSession":
		doc := in.DocumentName
		if doc == "" {
			doc = "SSM-SessionManagerRunShell"
		}
		return []iam.Resource{{ARN: s.instanceARN(in.Target)}, {ARN: s.documentARN(doc)}}
	case "ResumeSession", "TerminateSession":
		return []iam.Resource{{ARN: s.arn("session/" + in.SessionId)}}
	case "CreateDocument", "UpdateDocument", "UpdateDocumentDefaultVersion", "GetDocument", "DescribeDocument", "DeleteDocument":
		return []iam.Resource{{ARN: s.documentARN(in.Name)}}
	case "GetParameter", "PutParameter", "DeleteParameter":
		return []iam.Resource{s.parameterResource(in.Name)}
	case "GetParameters", "DeleteParameters":
		var out []iam.Resource
		for _, n := range in.Names {
			out = append(out, s.parameterResource(n))
		}
		return out
	case "GetParametersByPath":
		return []iam.Resource{s.parameterResource(in.Path)}
	}
	return nil
}

func (s *Service) arn(resource string) string {
	return "arn:aws:ssm:" + s.region + ":" + s.account + ":" + resource
}

// documentARN is a document's ARN: as given when it is one, without an
// account for AWS's own documents.
func (s *Service) documentARN(name string) string {
	if strings.HasPrefix(name, "arn:") {
		return name
	}
	s.mu.Lock()
	e := s.docs[name]
	s.mu.Unlock()
	if e != nil && e.owner == amazonOwner || strings.HasPrefix(name, "AWS-") {
		return "arn:aws:ssm:" + s.region + "::document/" + name
	}
	return s.arn("document/" + name)
}

// instanceARN is an EC2 instance's ARN, or a hybrid node's (mi-).
func (s *Service) instanceARN(id string) string {
	if strings.HasPrefix(id, "mi-") {
		return s.arn("managed-instance/" + id)
	}
	return "arn:aws:ec2:" + s.region + ":" + s.account + ":instance/" + id
}

// parameterResource is the parameter a name or ARN names.
func (s *Service) parameterResource(name string) iam.Resource {
	if strings.HasPrefix(name, "arn:") {
		return iam.Resource{ARN: name}
	}
	return iam.Resource{ARN: s.parameterARN(name)}
}
