package ledger

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSQLiteFilesArePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(context.Background(), "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Create(context.Background(), testGrant("g-1", time.Now(), time.Hour, Active)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", filepath.Base(p), mode)
		}
	}
}

// childEnv makes the test binary a writer that runs until it is killed
// (see TestMain).
const childEnv = "PASSPORT_LEDGER_KILL_CHILD"

// writeUntilKilled creates grants and audit events in a loop, printing
// each grant's id once Create has returned.
func writeUntilKilled(path string) {
	ctx := context.Background()
	l, err := Open(ctx, "sqlite://"+path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 0; ; i++ {
		// The pid keeps ids apart across rounds on one file.
		id := fmt.Sprintf("g-%d-%06d", os.Getpid(), i)
		if _, err := l.Create(ctx, testGrant(id, time.Now(), time.Hour, Provisioning)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if _, err := l.Append(ctx, Event{Actor: "alice@example.com", Action: ActionRequested, GrantID: id}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println(id)
	}
}

// Two processes write to one file at once and are killed with SIGKILL
// mid-write, three times over on the same file: every grant a writer had
// reported committed is there, and the two never forked the chain.
func TestSQLiteSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	for round := range 3 {
		// Kill at a different point of the write loop each round.
		kill := 40 + 37*round
		results := make(chan []string, 2)
		for range 2 {
			go func() { results <- writeThenKill(t, path, kill) }()
		}
		committed := append(<-results, <-results...)

		l, err := Open(context.Background(), "sqlite://"+path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range committed {
			if _, err := l.Get(context.Background(), id); err != nil {
				t.Errorf("round %d: grant %s was reported committed before the kill: %v", round, id, err)
			}
		}
		if err := l.Verify(context.Background()); err != nil {
			t.Errorf("round %d: %v", round, err)
		}
		l.Close()
		t.Logf("round %d: %d grants reported committed before SIGKILL, all present", round, len(committed))
	}
}

// writeThenKill runs a writer child on path, kills it with SIGKILL once it
// has reported kill grants, and returns every id it reported.
func writeThenKill(t *testing.T, path string, kill int) []string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Error(err)
		return nil
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Error(err)
		return nil
	}
	var committed []string
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		committed = append(committed, lines.Text())
		if len(committed) == kill {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	_ = cmd.Wait()
	if len(committed) < kill {
		t.Errorf("a writer stopped by itself after %d grants: %s", len(committed), stderr.String())
	}
	return committed
}

func TestOpenRefuses(t *testing.T) {
	dir := t.TempDir()
	cases := []struct{ url, want string }{
		{"", "not a ledger URL"},
		{"/var/lib/ledger.db", "not a ledger URL"},
		{"sqlite://", "names no file"},
		{"sqlite://" + dir + "/x.db?_pragma=journal_mode(DELETE)", "must not contain"},
		{"sqlite://" + dir + "/missing/x.db", "does its directory exist"},
		{"dynamodb://", "table name"},
		{"dynamodb://a", "table name"},
		{"dynamodb://bad/table", "table name"},
		{"postgres://db/ledger", "unknown ledger scheme"},
	}
	for _, tc := range cases {
		t.Run(tc.url, func(t *testing.T) {
			l, err := Open(context.Background(), tc.url, Options{})
			if err == nil {
				l.Close()
				t.Fatalf("Open(%q) succeeded", tc.url)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%q): %v, want it to say %q", tc.url, err, tc.want)
			}
		})
	}
}

func TestSQLiteRefusesANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(context.Background(), "sqlite://"+path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.b.(*sqliteBackend).db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion+1)); err != nil {
		t.Fatal(err)
	}
	l.Close()
	_, err = Open(context.Background(), "sqlite://"+path, Options{})
	if err == nil || !strings.Contains(err.Error(), "upgrade Passport") {
		t.Errorf("Open of a file from a newer Passport: %v, want a refusal asking to upgrade", err)
	}
}

// TestSQLiteUpgradesASchema1File: a ledger written before grants kept the
// requester's groups opens, keeps every grant, and records groups after.
func TestSQLiteUpgradesASchema1File(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	// Schema 1's grants table, as Passport wrote it then.
	for _, stmt := range []string{`CREATE TABLE grants (
	id TEXT PRIMARY KEY, requester TEXT NOT NULL, reason TEXT NOT NULL, username TEXT NOT NULL, sudo INTEGER NOT NULL,
	targets TEXT NOT NULL, serial INTEGER NOT NULL, ca_public_key TEXT NOT NULL, public_key TEXT NOT NULL, certificate TEXT NOT NULL,
	issued_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL,
	lease_holder TEXT NOT NULL, lease_until INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, due_at INTEGER)`,
		`INSERT INTO grants VALUES ('ar-old', 'alice@example.com', 'INC-1 before groups', 'pp-old', 0,
	'[{"instance_id":"i-0123456789abcdef0","state":"active"}]', 7, 'ssh-ed25519 AAAACA', '', '',
	1700000000000000000, 1700003600000000000, 'active', 3, '', 0, 1700000000000000000, 1700000000000000000, 1700003600000000000)`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()

	ctx := context.Background()
	l, err := Open(ctx, "sqlite://"+path, Options{})
	if err != nil {
		t.Fatalf("opening a schema 1 file: %v", err)
	}
	defer l.Close()
	old, err := l.Get(ctx, "ar-old")
	if err != nil || old.Username != "pp-old" || old.Groups != nil || len(old.Targets) != 1 {
		t.Fatalf("the grant written before the upgrade: %+v, %v", old, err)
	}
	in := testGrant("ar-new", time.Now(), time.Hour, Active)
	if _, err := l.Create(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := l.Get(ctx, "ar-new")
	if err != nil || !slices.Equal(got.Groups, in.Groups) {
		t.Fatalf("groups after the upgrade: %v, %v; want %v", got.Groups, err, in.Groups)
	}
	var v int
	if err := l.b.(*sqliteBackend).db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Errorf("user_version %d, %v; want %d", v, err, schemaVersion)
	}
}

// A sqlite file made before the recordings' host index gets it when it is
// opened, and a host's recordings are then read through it, not by
// reading the table.
func TestSQLiteIndexesRecordingsByHost(t *testing.T) {
	ctx := context.Background()
	url := "sqlite://" + filepath.Join(t.TempDir(), "ledger.db")
	l, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.b.(*sqliteBackend).db.Exec(`DROP INDEX IF EXISTS recordings_instance`); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Open(ctx, url, Options{}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rows, err := l.b.(*sqliteBackend).db.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT value FROM recordings WHERE instance_id = ?`, "i-01")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if p := strings.Join(plan, "; "); !strings.Contains(p, "USING INDEX recordings_instance") {
		t.Errorf("a host's recordings are read by: %s; want the recordings_instance index", p)
	}
}
