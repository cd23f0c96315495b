package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// passport policy runs offline, as an administrator's CI would run it: the
// lab's policy passes its own cases, a case that expects otherwise makes
// it exit non-zero saying which and why, and a broken policy is refused
// naming the line.
func TestPolicyCommands(t *testing.T) {
	// No AWS and no service: nothing but the files.
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
	t.Setenv("PASSPORT_SERVER", "")
	const lab, cases = "../../internal/lab/policy.cedar", "../../internal/lab/policy-cases.json"

	out, errOut, err := passportRun(t, "policy", "validate", lab)
	if err != nil || !strings.Contains(out, "15 policies fit Passport's schema (14 permit, 1 forbid; 4 grant only with approval)") {
		t.Fatalf("validate: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = passportRun(t, "policy", "test", lab, cases)
	if err != nil || !strings.Contains(out, "31 cases, 0 failed") {
		t.Fatalf("test: %v\n%s%s", err, out, errOut)
	}

	dir := t.TempDir()
	doc, err := os.ReadFile(cases)
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(dir, "cases.json")
	changed := strings.Replace(string(doc), `"duration": "3h", "expect": "approval", "approvals": 1, "approvers": ["group:admins", "group:ops"]`, `"duration": "3h", "expect": "grant"`, 1)
	if changed == string(doc) {
		t.Fatal("the lab's cases changed: find another case to break")
	}
	if err := os.WriteFile(wrong, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err = passportRun(t, "policy", "test", lab, wrong)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("a failing case: exit %v, want 1\n%s%s", err, out, errOut)
	}
	for _, want := range []string{
		"FAIL  bob (dev) reaches staging for 3h once an operator or admin approves: got approval (1 approval, from group:admins, group:ops), want grant",
		`needs 1 approval under policy "dev-staging-longer"`,
		"31 cases, 1 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// The policy guide shows this failure as it is printed.
	guide, err := os.ReadFile("../../templates/guides/policy.md.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "FAIL") || strings.Contains(line, "dev-staging-longer") {
			if !strings.Contains(string(guide), line) {
				t.Errorf("the policy guide does not show %q as the command prints it", line)
			}
		}
	}
	if !strings.Contains(errOut, "1 of 31 cases got another decision than they expect") {
		t.Errorf("stderr: %s", errOut)
	}

	broken := filepath.Join(dir, "broken.cedar")
	if err := os.WriteFile(broken, []byte("@id(\"a\")\npermit (principal, action, resource)\nwhen { context.duraton < 60 };\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"policy", "validate", broken}, {"policy", "test", broken, cases}} {
		_, errOut, err := passportRun(t, args...)
		if err == nil || !strings.Contains(errOut, `policy "a" (line 1) does not fit Passport's schema`) {
			t.Errorf("%v: %v %s", args, err, errOut)
		}
	}
	empty := filepath.Join(dir, "empty.cedar")
	os.WriteFile(empty, []byte("// nothing yet\n"), 0o600)
	if _, errOut, err := passportRun(t, "policy", "validate", empty); err == nil || !strings.Contains(errOut, "would deny every request") {
		t.Errorf("an empty policy: %v %s", err, errOut)
	}
	if _, errOut, err := passportRun(t, "policy", "test", lab, broken); err == nil || !strings.Contains(errOut, "broken.cedar: the cases file is not JSON at line 1") {
		t.Errorf("cases that are not JSON: %v %s", err, errOut)
	}
	if out, _, err := passportRun(t, "policy", "schema"); err != nil || !strings.Contains(out, `action "approve"`) {
		t.Errorf("schema: %v %s", err, out)
	}
}
