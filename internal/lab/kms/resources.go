package kms

import (
	"encoding/json"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/iam"
)

// Resources names what a call acts on, as IAM sees it, for the callers'
// policies (awsjson.Service.Resources): a call on a key acts on the key's
// ARN, whatever alias or ARN named it, with the key's tags for
// aws:ResourceTag conditions; CreateAlias also on the alias. CreateKey and
// the listings act on "*".
func (s *Service) Resources(operation string, input json.RawMessage) []iam.Resource {
	var in struct{ KeyId, TargetKeyId, AliasName string }
	if awsjson.Decode(input, &in) != nil {
		return nil
	}
	switch operation {
	case "DescribeKey", "GetPublicKey", "Sign", "Verify", "ScheduleKeyDeletion", "CancelKeyDeletion", "EnableKey", "DisableKey":
		return []iam.Resource{s.keyResource(in.KeyId)}
	case "CreateAlias":
		return []iam.Resource{s.keyResource(in.TargetKeyId), {ARN: "arn:aws:kms:" + s.region + ":" + s.account + ":" + in.AliasName}}
	}
	return nil
}

// keyResource resolves keyID as the call will. A key that does not exist
// is still a resource, untagged, so a policy decides before the call
// answers NotFoundException, as on AWS.
func (s *Service) keyResource(keyID string) iam.Resource {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, err := s.lookup(keyID); err == nil {
		tags := make(map[string]string, len(k.tags))
		for _, t := range k.tags {
			tags[t.TagKey] = t.TagValue
		}
		return iam.Resource{ARN: k.arn, Tags: tags}
	}
	if strings.HasPrefix(keyID, "arn:") {
		return iam.Resource{ARN: keyID}
	}
	return iam.Resource{ARN: "arn:aws:kms:" + s.region + ":" + s.account + ":key/" + strings.TrimPrefix(keyID, "key/")}
}
