package main

import (
	"bufio"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	_ "modernc.org/sqlite"

	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// auditLedger writes a small trail to a new sqlite ledger and returns the
// file: two requests, one by alice, one by bob, seven events.
func auditLedger(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ledger.db")
	ctx := context.Background()
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	l, err := ledger.Open(ctx, "sqlite://"+path, ledger.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []ledger.Event{
		{Actor: "alice@example.com", Action: ledger.ActionRequested, GrantID: "ar-1", Subject: "alice@example.com", Detail: "INC-1234 disk alert"},
		{Actor: "alice@example.com", Action: ledger.ActionProvisioned, GrantID: "ar-1", Target: "i-0123456789abcdef0", Subject: "alice@example.com"},
		{Actor: "alice@example.com", Action: ledger.ActionProvisioned, GrantID: "ar-1", Target: "i-0123456789abcdef1", Subject: "alice@example.com"},
		{Actor: "bob@example.com", Action: ledger.ActionRequested, GrantID: "ar-2", Subject: "bob@example.com", Detail: "deploy\x1b[2Jhidden"},
		{Actor: "reconciler/r1", Action: ledger.ActionRevoked, GrantID: "ar-1", Target: "i-0123456789abcdef0", Subject: "alice@example.com"},
		{Actor: "reconciler/r1", Action: ledger.ActionRevoked, GrantID: "ar-1", Target: "i-0123456789abcdef1", Subject: "alice@example.com"},
		{Actor: "reconciler/r1", Action: ledger.ActionExpired, GrantID: "ar-1", Subject: "alice@example.com"},
	} {
		e.Time = now
		now = now.Add(time.Minute)
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// tamper copies the ledger file and changes its audit table with stmt, as
// someone with write access to the file would.
func tamper(t *testing.T, src string, stmts ...string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "tampered.db")
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return dst
}

func TestAuditVerifyNamesTheBrokenEvent(t *testing.T) {
	path := auditLedger(t)
	stdout, stderr, err := passportRun(t, "audit", "verify", "--ledger", "sqlite://"+path)
	if err != nil || !strings.Contains(stdout, "intact: 7 events") {
		t.Fatalf("verify of an intact trail: %v\n%s%s", err, stdout, stderr)
	}
	for _, tc := range []struct {
		name  string
		stmts []string
		want  string
	}{
		{"edited", []string{`UPDATE audit SET detail = 'nothing happened' WHERE seq = 4`}, "event 4 ("},
		{"actor changed", []string{`UPDATE audit SET actor = 'alice@example.com' WHERE seq = 5`}, "event 5 ("},
		{"deleted", []string{`DELETE FROM audit WHERE seq = 3`}, "event 3 is missing"},
		{"reordered", []string{
			`UPDATE audit SET seq = -1 WHERE seq = 5`,
			`UPDATE audit SET seq = 5 WHERE seq = 6`,
			`UPDATE audit SET seq = 6 WHERE seq = -1`,
		}, "event 5 ("},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := tamper(t, path, tc.stmts...)
			stdout, stderr, err := passportRun(t, "audit", "verify", "--ledger", "sqlite://"+bad)
			if err == nil {
				t.Fatalf("verify passed a %s trail: %s", tc.name, stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("verify of a %s trail said %q, want it to name %q", tc.name, stderr, tc.want)
			}
		})
	}
}

func TestAuditListFiltersAndExport(t *testing.T) {
	ledgerURL := "sqlite://" + auditLedger(t)
	for _, tc := range []struct {
		args []string
		want []string // the SEQ column
	}{
		{nil, []string{"1", "2", "3", "4", "5", "6", "7"}},
		{[]string{"--person", "bob@example.com"}, []string{"4"}},
		{[]string{"--person", "alice@example.com"}, []string{"1", "2", "3", "5", "6", "7"}},
		{[]string{"--target", "i-0123456789abcdef1"}, []string{"3", "6"}},
		{[]string{"--request", "ar-2"}, []string{"4"}},
		{[]string{"--since", "2026-11-24T09:04:00Z", "--until", "2026-11-24T09:06:00Z"}, []string{"5", "6"}},
	} {
		stdout, stderr, err := passportRun(t, append([]string{"audit", "list", "--ledger", ledgerURL}, tc.args...)...)
		if err != nil {
			t.Fatalf("list %v: %v: %s", tc.args, err, stderr)
		}
		if strings.Contains(stdout, "\x1b") {
			t.Errorf("list %v printed a terminal escape from a stored detail", tc.args)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
			got = append(got, strings.Fields(line)[0])
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("list %v: events %v, want %v", tc.args, got, tc.want)
		}
	}
	if _, stderr, err := passportRun(t, "audit", "list", "--ledger", ledgerURL, "--since", "yesterday"); err == nil || !strings.Contains(stderr, "--since") {
		t.Errorf("a bad --since: %v %q, want an error naming the flag", err, stderr)
	}

	stdout, stderr, err := passportRun(t, "audit", "export", "--ledger", ledgerURL)
	if err != nil {
		t.Fatalf("export: %v: %s", err, stderr)
	}
	last, err := ledger.VerifyExport(bufio.NewReader(strings.NewReader(stdout)))
	if err != nil || last.Seq != 7 {
		t.Errorf("the export does not verify on its own: last %d, %v", last.Seq, err)
	}
	stdout, _, err = passportRun(t, "audit", "show", "--ledger", ledgerURL, "5")
	if err != nil || !strings.Contains(stdout, "reconciler/r1") || !strings.Contains(stdout, "prev_hash") {
		t.Errorf("show 5: %v\n%s", err, stdout)
	}
	if _, stderr, err := passportRun(t, "audit", "show", "--ledger", ledgerURL, "99"); err == nil || !strings.Contains(stderr, "no event 99") {
		t.Errorf("show of a missing event: %v %q", err, stderr)
	}
}

// An event's detail comes from requesters and hosts: whatever it holds,
// list and show print one line with no control or bidi formatting
// characters.
func FuzzOneLine(f *testing.F) {
	for _, s := range []string{"", "plain", "a\nb\rc", "\x1b[2J\x1b]0;title\a", "\u202eevil\u202c", "\u2066x\u2069", "\xff\xfe", "\u0085next line", "a\u2028b", "\u200fx"} {
		f.Add(s, 20)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 1 || n > 1000 {
			return
		}
		out := oneLine(s, n)
		for _, r := range out {
			if !unicode.IsPrint(r) {
				t.Fatalf("oneLine(%q) = %q keeps %U", s, out, r)
			}
		}
		if len(out) > n+len("…")+utf8.UTFMax {
			t.Fatalf("oneLine(%q, %d) is %d bytes", s, n, len(out))
		}
	})
}
