package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/passport-access/terraform-provider-passport/internal/ledger/dynamotest"
)

// TestLedgerInit: passport ledger init makes a DynamoDB table that the
// other commands then use, and says so; run again, it changes nothing.
func TestLedgerInit(t *testing.T) {
	endpoint := dynamotest.Start(t, dynamotest.Dynalite)
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], append(args, "--region", "us-east-1", "--endpoint-dynamodb", endpoint)...)
		cmd.Env = append(os.Environ(), "PASSPORT_RUN_MAIN=1", "AWS_ACCESS_KEY_ID=AKIDLEDGERINIT", "AWS_SECRET_ACCESS_KEY=ledger-init-secret",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PROFILE=")
		return cmd
	}
	run := func(args ...string) string {
		t.Helper()
		out, err := command(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("passport %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	const url = "dynamodb://passport-ledger"
	out := run("ledger", "init", url)
	if !strings.Contains(out, url+": created") || !strings.Contains(out, `time to live on "ttl": not supported by this server`) {
		t.Fatalf("the first init printed:\n%s", out)
	}
	if out := run("ledger", "init", url); !strings.Contains(out, url+": was already there") {
		t.Fatalf("init again printed:\n%s", out)
	}
	// The ledger's commands use the table: verifying its (empty) trail
	// works, where a table that was never made is refused with the way to
	// make it.
	run("audit", "verify", "--ledger", url)
	if out, err := command("audit", "verify", "--ledger", "dynamodb://never-made").CombinedOutput(); err == nil || !strings.Contains(string(out), "passport ledger init dynamodb://never-made") {
		t.Fatalf("audit verify on a table never made: %v\n%s\nwant an error naming passport ledger init", err, out)
	}
}
