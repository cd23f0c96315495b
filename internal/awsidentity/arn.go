package awsidentity

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	partitionRE = regexp.MustCompile(`^aws(-[a-z0-9]+)*$`)
	accountRE   = regexp.MustCompile(`^[0-9]{12}$`)
	// IAM names and paths: letters, digits and +=,.@_- (and / in paths).
	iamNameRE = regexp.MustCompile(`^[A-Za-z0-9+=,.@_-]{1,128}$`)
	iamPathRE = regexp.MustCompile(`^[A-Za-z0-9+=,.@_/-]{1,512}$`)
)

// PrincipalARN is the ARN an operator writes in policy for the caller STS
// names with arn. An assumed role's session,
// arn:aws:sts::123456789012:assumed-role/deploy/ci-1234, is the role,
// arn:aws:iam::123456789012:role/deploy, and session is its session name
// (ci-1234), which changes with every run and belongs in the audit trail,
// not in policy. The role's path is not in an assumed-role ARN, so the
// role ARN has none either. IAM users, the account root and federated
// users are returned as they are. The partition (aws, aws-cn,
// aws-us-gov, ...) is kept.
func PrincipalARN(arn string) (principal, session string, err error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" {
		return "", "", fmt.Errorf("%q is not an ARN", clip(arn, 200))
	}
	partition, service, region, account, resource := parts[1], parts[2], parts[3], parts[4], parts[5]
	if !partitionRE.MatchString(partition) || region != "" || !accountRE.MatchString(account) {
		return "", "", fmt.Errorf("%q is not the ARN of an IAM or STS principal (arn:PARTITION:iam::ACCOUNT:...)", clip(arn, 200))
	}
	kind, name, _ := strings.Cut(resource, "/")
	switch {
	case service == "iam" && resource == "root":
		return arn, "", nil
	case service == "iam" && (kind == "user" || kind == "role") && iamPathRE.MatchString(name) &&
		!strings.HasPrefix(name, "/") && !strings.HasSuffix(name, "/") && !strings.Contains(name, "//"):
		return arn, "", nil
	case service == "sts" && kind == "assumed-role":
		role, sess, ok := strings.Cut(name, "/")
		if !ok || !iamNameRE.MatchString(role) || !iamNameRE.MatchString(sess) {
			break
		}
		return "arn:" + partition + ":iam::" + account + ":role/" + role, sess, nil
	case service == "sts" && kind == "federated-user" && iamNameRE.MatchString(name):
		return arn, "", nil
	}
	return "", "", fmt.Errorf("%q names no IAM user, role, assumed role, federated user or account root", clip(arn, 200))
}
