package awsidentity

import "testing"

func TestPrincipalARN(t *testing.T) {
	for _, c := range []struct{ arn, principal, session string }{
		{"arn:aws:sts::123456789012:assumed-role/deploy/ci-run-42", "arn:aws:iam::123456789012:role/deploy", "ci-run-42"},
		{"arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123abcd/alice@example.com", "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123abcd", "alice@example.com"},
		{"arn:aws-cn:sts::123456789012:assumed-role/deploy/i-0abc", "arn:aws-cn:iam::123456789012:role/deploy", "i-0abc"},
		{"arn:aws-us-gov:sts::123456789012:assumed-role/deploy/s", "arn:aws-us-gov:iam::123456789012:role/deploy", "s"},
		{"arn:aws-iso-b:sts::123456789012:assumed-role/deploy/s", "arn:aws-iso-b:iam::123456789012:role/deploy", "s"},
		{"arn:aws:iam::123456789012:user/ci", "arn:aws:iam::123456789012:user/ci", ""},
		{"arn:aws:iam::123456789012:user/division/team/ci", "arn:aws:iam::123456789012:user/division/team/ci", ""},
		{"arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root", ""},
		{"arn:aws:sts::123456789012:federated-user/bob", "arn:aws:sts::123456789012:federated-user/bob", ""},
	} {
		p, s, err := PrincipalARN(c.arn)
		if err != nil || p != c.principal || s != c.session {
			t.Errorf("PrincipalARN(%q) = %q, %q, %v; want %q, %q", c.arn, p, s, err, c.principal, c.session)
		}
	}
	for _, bad := range []string{
		"",
		"arn:aws:iam::123456789012",
		"arn:aws:s3:::bucket/key",
		"arn:aws:iam:us-east-1:123456789012:user/ci",
		"arn:aws:iam::12345678901:user/ci",
		"arn:AWS:iam::123456789012:user/ci",
		"arn:aws:iam::123456789012:group/ops",
		"arn:aws:iam::123456789012:user/",
		"arn:aws:iam::123456789012:user//ci",
		"arn:aws:iam::123456789012:user/c\"i",
		"arn:aws:sts::123456789012:assumed-role/deploy",
		"arn:aws:sts::123456789012:assumed-role/deploy/a/b",
		"arn:aws:sts::123456789012:assumed-role//s",
		"arn:aws:sts::123456789012:root",
		"arn:aws:iam::123456789012:root/x",
	} {
		if p, s, err := PrincipalARN(bad); err == nil {
			t.Errorf("PrincipalARN(%q) = %q, %q; want an error", bad, p, s)
		}
	}
}
