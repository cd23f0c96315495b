package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// sqliteBackend keeps the ledger in one sqlite file for one machine.
// Several processes may share the file: every write is one statement or one
// IMMEDIATE transaction, and waiters queue on the busy timeout.
type sqliteBackend struct {
	db *sql.DB
}

const sqliteSchema = `
CREATE TABLE IF NOT EXISTS grants (
	id            TEXT PRIMARY KEY,
	requester     TEXT NOT NULL,
	reason        TEXT NOT NULL,
	username      TEXT NOT NULL,
	sudo          INTEGER NOT NULL,
	targets       TEXT NOT NULL,
	serial        INTEGER NOT NULL,
	ca_public_key TEXT NOT NULL,
	public_key    TEXT NOT NULL,
	certificate   TEXT NOT NULL,
	issued_at     INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	state         TEXT NOT NULL,
	version       INTEGER NOT NULL,
	lease_holder  TEXT NOT NULL,
	lease_until   INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	due_at        INTEGER,
	requester_groups TEXT NOT NULL DEFAULT '[]',
	requester_kind TEXT NOT NULL DEFAULT '',
	workflow      TEXT NOT NULL DEFAULT '',
	notices       TEXT NOT NULL DEFAULT '',
	notice_seq    INTEGER NOT NULL DEFAULT 0,
	outbox_at     INTEGER,
	delivery      TEXT NOT NULL DEFAULT '',
	delivery_version INTEGER NOT NULL DEFAULT 0
);
-- Only open grants have a due_at, so the reconciler's pass reads an index
-- the size of the open grants, not of the history.
CREATE INDEX IF NOT EXISTS grants_due ON grants (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS grants_state ON grants (state, expires_at);

CREATE TABLE IF NOT EXISTS audit (
	seq       INTEGER PRIMARY KEY,
	time      INTEGER NOT NULL,
	actor     TEXT NOT NULL,
	action    TEXT NOT NULL,
	grant_id  TEXT NOT NULL,
	target    TEXT NOT NULL,
	subject   TEXT NOT NULL,
	detail    TEXT NOT NULL,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_grant ON audit (grant_id);

CREATE TABLE IF NOT EXISTS entries (
	kind    TEXT NOT NULL,
	key     TEXT NOT NULL,
	value   BLOB NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS entries_expires ON entries (expires);

CREATE TABLE IF NOT EXISTS recordings (
	request_id  TEXT NOT NULL,
	instance_id TEXT NOT NULL,
	session     TEXT NOT NULL,
	value       TEXT NOT NULL,
	PRIMARY KEY (request_id, instance_id, session)
);
-- A collection asks what is stored from one host: the primary key serves a
-- request's recordings, this index a host's.
CREATE INDEX IF NOT EXISTS recordings_instance ON recordings (instance_id);
`

// grantColumnNames is the order of grantArgs' values.
var grantColumnNames = []string{"id", "requester", "reason", "username", "sudo", "targets", "serial", "ca_public_key", "public_key", "certificate",
	"issued_at", "expires_at", "state", "version", "lease_holder", "lease_until", "created_at", "updated_at", "due_at", "requester_groups", "requester_kind", "workflow"}

var grantColumns = strings.Join(grantColumnNames, ", ")

// grantSelect is what a read returns: the grant's columns and its
// outbox's, which only the ledger's outbox code writes.
var grantSelect = grantColumns + ", notices, notice_seq, outbox_at IS NOT NULL, delivery, delivery_version"

// grantPlaceholders is one "?" per column of grantColumns, so that a
// column added to one cannot leave a statement short of a value.
var grantPlaceholders = strings.TrimSuffix(strings.Repeat("?, ", len(grantColumnNames)), ", ")

// grantUpdates assigns every column but created_at, which Create writes
// once: an update carries no creation time of its own to overwrite it with.
var grantUpdates = func() string {
	var set []string
	for _, c := range grantColumnNames {
		if c != "created_at" {
			set = append(set, c+" = ?")
		}
	}
	return strings.Join(set, ", ")
}()

// updateArgs is grantArgs without created_at, in grantUpdates' order.
func updateArgs(g *Grant) ([]any, error) {
	args, err := grantArgs(g)
	if err != nil {
		return nil, err
	}
	i := slices.Index(grantColumnNames, "created_at")
	return slices.Delete(args, i, i+1), nil
}

func openSQLite(ctx context.Context, path string) (*sqliteBackend, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: sqlite path %q: %w", path, err)
	}
	// The driver reads everything after '?' as its own options.
	if strings.ContainsAny(abs, "?#") {
		return nil, fmt.Errorf("ledger: sqlite path %q must not contain '?' or '#'", path)
	}
	// Create the file 0600 before sqlite does: the grants name users and
	// hosts, and sqlite gives the -wal and -shm files the database's mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ledger: opening %s: %w (does its directory exist and may this user write there?)", abs, err)
	}
	f.Close()
	// synchronous(FULL): a write the caller saw committed is on disk before
	// the call returns, so a killed process or machine loses no grant.
	// _txlock=immediate: a transaction takes the write lock when it begins,
	// so two appenders queue on the busy timeout instead of both reading
	// the same chain head and one failing at commit.
	dsn := abs + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("ledger: opening %s: %w", abs, err)
	}
	if err := prepareSchema(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: preparing %s: %w", abs, err)
	}
	return &sqliteBackend{db: db}, nil
}

// schemaVersion is stored as the file's user_version, so that a later
// Passport can migrate the file and an older one refuses a newer file
// instead of misreading it. 2 added requester_groups, 3 requester_kind, 4
// workflow (approvals), 5 the outbox (notices, notice_seq, outbox_at,
// delivery, delivery_version), 6 the recordings table.
const schemaVersion = 6

func prepareSchema(ctx context.Context, db *sql.DB) error {
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v > schemaVersion {
		return fmt.Errorf("the file has ledger schema %d, this Passport knows up to %d: upgrade Passport", v, schemaVersion)
	}
	if _, err := db.ExecContext(ctx, sqliteSchema); err != nil {
		return err
	}
	// An older file has its grants table without the newer columns:
	// CREATE TABLE IF NOT EXISTS left it as it was. Several processes may
	// open the file at once, so a column is added only where missing,
	// inside one write transaction.
	for _, c := range []struct {
		version    int
		name, decl string
	}{
		{2, "requester_groups", "TEXT NOT NULL DEFAULT '[]'"},
		{3, "requester_kind", "TEXT NOT NULL DEFAULT ''"},
		{4, "workflow", "TEXT NOT NULL DEFAULT ''"},
		{5, "notices", "TEXT NOT NULL DEFAULT ''"},
		{5, "notice_seq", "INTEGER NOT NULL DEFAULT 0"},
		{5, "outbox_at", "INTEGER"},
		{5, "delivery", "TEXT NOT NULL DEFAULT ''"},
		{5, "delivery_version", "INTEGER NOT NULL DEFAULT 0"},
	} {
		if v >= c.version {
			continue
		}
		if err := addColumn(ctx, db, c.name, c.decl); err != nil {
			return fmt.Errorf("upgrading the ledger to schema %d: %w", c.version, err)
		}
	}
	// Only grants with notices to send are in the outbox index, so a
	// deliverer's poll reads those and nothing else.
	if _, err := db.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS grants_outbox ON grants (outbox_at) WHERE outbox_at IS NOT NULL`); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion))
	return err
}

func addColumn(ctx context.Context, db *sql.DB, name, decl string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('grants') WHERE name = ?`, name).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		// name and decl are the constants above, never input.
		if _, err := tx.ExecContext(ctx, `ALTER TABLE grants ADD COLUMN `+name+` `+decl); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (s *sqliteBackend) close() error { return s.db.Close() }

func grantArgs(g *Grant) ([]any, error) {
	targets, err := encodeTargets(g.Targets)
	if err != nil {
		return nil, err
	}
	flow, err := encodeWorkflow(g)
	if err != nil {
		return nil, err
	}
	var due sql.NullInt64
	if !g.DueAt.IsZero() {
		due = sql.NullInt64{Int64: nanos(g.DueAt), Valid: true}
	}
	// The serial is a uint64; sqlite stores int64. The cast round-trips.
	return []any{g.ID, g.Requester, g.Reason, g.Username, g.Sudo, targets, int64(g.Serial), g.CAPublicKey, g.PublicKey, g.Certificate,
		nanos(g.IssuedAt), nanos(g.ExpiresAt), string(g.State), g.Version, g.Lease.Holder, nanos(g.Lease.Until),
		nanos(g.CreatedAt), nanos(g.UpdatedAt), due, encodeGroups(g.Groups), g.RequesterKind, flow}, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanGrant(r scanner) (Grant, error) {
	var (
		g                                                Grant
		targets, state, groups, flow, notices, delivery  string
		serial, issued, expires, until, created, updated int64
		deliveryVersion                                  int64
		due                                              sql.NullInt64
	)
	err := r.Scan(&g.ID, &g.Requester, &g.Reason, &g.Username, &g.Sudo, &targets, &serial, &g.CAPublicKey, &g.PublicKey, &g.Certificate,
		&issued, &expires, &state, &g.Version, &g.Lease.Holder, &until, &created, &updated, &due, &groups, &g.RequesterKind, &flow,
		&notices, &g.NoticeSeq, &g.Outbox, &delivery, &deliveryVersion)
	if err != nil {
		return Grant{}, err
	}
	if g.Notices, err = decodeNotices(g.ID, notices); err != nil {
		return Grant{}, err
	}
	if g.Delivery, err = decodeDelivery(g.ID, delivery, deliveryVersion); err != nil {
		return Grant{}, err
	}
	g.Serial, g.State = uint64(serial), State(state)
	g.IssuedAt, g.ExpiresAt, g.Lease.Until = fromNanos(issued), fromNanos(expires), fromNanos(until)
	g.CreatedAt, g.UpdatedAt, g.DueAt = fromNanos(created), fromNanos(updated), fromNanos(due.Int64)
	if g.Groups, err = decodeGroups(g.ID, groups); err != nil {
		return Grant{}, err
	}
	if err := g.setWorkflow(flow); err != nil {
		return Grant{}, err
	}
	g.Targets, err = decodeTargets(g.ID, targets)
	return g, err
}

func (s *sqliteBackend) createGrant(ctx context.Context, g *Grant) error {
	args, err := grantArgs(g)
	if err != nil {
		return err
	}
	notices, err := encodeNotices(g.Notices)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO grants (`+grantColumns+`, notices, notice_seq, outbox_at)
		VALUES (`+grantPlaceholders+`, ?, ?, ?) ON CONFLICT (id) DO NOTHING`, append(args, notices, g.NoticeSeq, outboxAt(g))...)
	if err != nil {
		return fmt.Errorf("ledger: storing grant %s: %w", g.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("grant %s: %w", g.ID, ErrExists)
	}
	return nil
}

func (s *sqliteBackend) grant(ctx context.Context, id string) (Grant, error) {
	g, err := scanGrant(s.db.QueryRowContext(ctx, `SELECT `+grantSelect+` FROM grants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, notFound(id)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("ledger: reading grant %s: %w", id, err)
	}
	return g, nil
}

func (s *sqliteBackend) putGrant(ctx context.Context, g *Grant, prev int64, withNotices bool) error {
	args, err := updateArgs(g)
	if err != nil {
		return err
	}
	set := grantUpdates
	if withNotices {
		notices, err := encodeNotices(g.Notices)
		if err != nil {
			return err
		}
		set += `, notices = ?, notice_seq = ?, outbox_at = ?`
		args = append(args, notices, g.NoticeSeq, outboxAt(g))
	}
	cond := `id = ? AND version = ?`
	if !g.State.Closed() {
		cond += ` AND state IN ('pending', 'provisioning', 'active', 'revoking')`
	}
	var created int64
	err = s.db.QueryRowContext(ctx, `UPDATE grants SET `+set+` WHERE `+cond+` RETURNING created_at`,
		append(args, g.ID, prev)...).Scan(&created)
	if err == nil {
		g.CreatedAt = fromNanos(created)
		return nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("ledger: updating grant %s: %w", g.ID, err)
	}
	cur, err := s.grant(ctx, g.ID)
	if err != nil {
		return err
	}
	return updateRefused(cur, prev)
}

func (s *sqliteBackend) queryGrants(ctx context.Context, what, query string, args ...any) ([]Grant, error) {
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: listing %s grants: %w", what, err)
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("ledger: listing %s grants: %w", what, err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: listing %s grants: %w", what, err)
	}
	return out, nil
}

func (s *sqliteBackend) grantsInState(ctx context.Context, st State) ([]Grant, error) {
	return s.queryGrants(ctx, string(st), `SELECT `+grantSelect+` FROM grants WHERE state = ? ORDER BY expires_at, id`, string(st))
}

func (s *sqliteBackend) dueGrants(ctx context.Context, now time.Time) ([]Grant, error) {
	return s.queryGrants(ctx, "due", `SELECT `+grantSelect+` FROM grants WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at, id`, nanos(now))
}

func (s *sqliteBackend) setLease(ctx context.Context, id string, l Lease, holder string, now time.Time) (Grant, error) {
	// One statement: the condition and the write are atomic.
	cond := `lease_holder = '' OR lease_until <= ? OR lease_holder = ?`
	args := []any{l.Holder, nanos(l.Until), id, nanos(now), holder}
	if l.Holder == "" {
		cond = `lease_holder = ?`
		args = []any{"", int64(0), id, holder}
	}
	g, err := scanGrant(s.db.QueryRowContext(ctx, `UPDATE grants SET lease_holder = ?, lease_until = ?, version = version + 1
		WHERE id = ? AND (`+cond+`) RETURNING `+grantSelect, args...))
	if err == nil {
		return g, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return Grant{}, fmt.Errorf("ledger: leasing grant %s: %w", id, err)
	}
	cur, err := s.grant(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	return Grant{}, leaseRefused(cur, now)
}

// leaseRefused explains a refused lease from the grant as it is now.
func leaseRefused(cur Grant, now time.Time) error {
	e := &LeaseHeldError{GrantID: cur.ID}
	if cur.Lease.held(now) {
		e.Holder, e.Until = cur.Lease.Holder, cur.Lease.Until
	}
	return e
}

const eventColumns = `seq, time, actor, action, grant_id, target, subject, detail, prev_hash, hash`

func (s *sqliteBackend) appendEvent(ctx context.Context, e Event) (Event, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Event{}, fmt.Errorf("ledger: appending %s event: %w", e.Action, err)
	}
	defer tx.Rollback()
	last, err := lastEvent(ctx, tx)
	if err != nil {
		return Event{}, err
	}
	e.seal(last.Seq, last.Hash)
	_, err = tx.ExecContext(ctx, `INSERT INTO audit (`+eventColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, nanos(e.Time), e.Actor, string(e.Action), e.GrantID, e.Target, e.Subject, e.Detail, e.PrevHash, e.Hash)
	if err != nil {
		return Event{}, fmt.Errorf("ledger: appending %s: %w", e.String(), err)
	}
	if err := tx.Commit(); err != nil {
		return Event{}, fmt.Errorf("ledger: appending %s: %w", e.String(), err)
	}
	return e, nil
}

func (s *sqliteBackend) lastEvent(ctx context.Context) (Event, error) { return lastEvent(ctx, s.db) }

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// lastEvent returns the event at the end of the trail, or the zero Event.
func lastEvent(ctx context.Context, q querier) (Event, error) {
	var last Event
	err := scanEvents(ctx, q, `SELECT `+eventColumns+` FROM audit ORDER BY seq DESC LIMIT 1`, nil, func(e Event) error {
		last = e
		return nil
	})
	return last, err
}

func (s *sqliteBackend) events(ctx context.Context, f Filter, fn func(Event) error) error {
	var where []string
	var args []any
	if f.GrantID != "" {
		where, args = append(where, "grant_id = ?"), append(args, f.GrantID)
	}
	if f.Target != "" {
		where, args = append(where, "target = ?"), append(args, f.Target)
	}
	if f.Person != "" {
		where, args = append(where, "(actor = ? OR subject = ?)"), append(args, f.Person, f.Person)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, nanos(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, nanos(f.Until))
	}
	q := `SELECT ` + eventColumns + ` FROM audit`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	order := ` ORDER BY seq`
	if f.newestFirst {
		order += ` DESC`
	}
	return scanEvents(ctx, s.db, q+order, args, fn)
}

func scanEvents(ctx context.Context, q querier, query string, args []any, fn func(Event) error) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("ledger: reading the audit trail: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			e      Event
			t      int64
			action string
		)
		if err := rows.Scan(&e.Seq, &t, &e.Actor, &action, &e.GrantID, &e.Target, &e.Subject, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return fmt.Errorf("ledger: reading the audit trail: %w", err)
		}
		e.Time, e.Action = fromNanos(t), Action(action)
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("ledger: reading the audit trail: %w", err)
	}
	return nil
}

// putEntry drops what has expired, then inserts e if its key is free, in
// one write transaction.
func (s *sqliteBackend) putEntry(ctx context.Context, e Entry, now time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("ledger: storing %s: %w", e.Kind, err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM entries WHERE expires <= ?`, nanos(now)); err != nil {
		return fmt.Errorf("ledger: dropping expired entries: %w", err)
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO entries (kind, key, value, expires) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`,
		e.Kind, e.Key, nonNil(e.Value), nanos(e.Expires))
	if err != nil {
		return fmt.Errorf("ledger: storing %s: %w", e.Kind, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %.60s: %w", e.Kind, e.Key, ErrExists)
	}
	return tx.Commit()
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func (s *sqliteBackend) entry(ctx context.Context, kind, key string) (Entry, error) {
	e := Entry{Kind: kind, Key: key}
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT value, expires FROM entries WHERE kind = ? AND key = ?`, kind, key).Scan(&e.Value, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, entryNotFound(kind, key)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: reading %s: %w", kind, err)
	}
	e.Expires = fromNanos(expires)
	return e, nil
}

func (s *sqliteBackend) takeEntry(ctx context.Context, kind, key string) (Entry, error) {
	e := Entry{Kind: kind, Key: key}
	var expires int64
	err := s.db.QueryRowContext(ctx, `DELETE FROM entries WHERE kind = ? AND key = ? RETURNING value, expires`, kind, key).Scan(&e.Value, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, entryNotFound(kind, key)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("ledger: taking %s: %w", kind, err)
	}
	e.Expires = fromNanos(expires)
	return e, nil
}

// outboxAt is the outbox column of g: when it entered the outbox, or NULL.
func outboxAt(g *Grant) sql.NullInt64 {
	if !g.Outbox {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: nanos(g.UpdatedAt), Valid: true}
}

func (s *sqliteBackend) outboxGrants(ctx context.Context) ([]Grant, error) {
	return s.queryGrants(ctx, "outbox", `SELECT `+grantSelect+` FROM grants WHERE outbox_at IS NOT NULL ORDER BY outbox_at, id`)
}

func (s *sqliteBackend) putDelivery(ctx context.Context, id string, d Delivery, prev int64) error {
	doc, err := encodeDelivery(d)
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE grants SET delivery = ?, delivery_version = ? WHERE id = ? AND delivery_version = ?`, doc, d.Version, id, prev)
	if err != nil {
		return fmt.Errorf("ledger: recording the delivery of grant %s's notices: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := s.grant(ctx, id); err != nil {
			return err
		}
		return &ConflictError{GrantID: id, Version: prev}
	}
	return nil
}

func (s *sqliteBackend) settle(ctx context.Context, id string, through, version int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE grants SET outbox_at = NULL WHERE id = ? AND notice_seq = ? AND delivery_version = ?`, id, through, version)
	if err != nil {
		return fmt.Errorf("ledger: taking grant %s out of the outbox: %w", id, err)
	}
	return nil
}

func (s *sqliteBackend) putRecording(ctx context.Context, r Recording) error {
	v, err := encodeRecording(&r)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO recordings (request_id, instance_id, session, value) VALUES (?, ?, ?, ?)
		ON CONFLICT (request_id, instance_id, session) DO UPDATE SET value = excluded.value`, r.RequestID, r.InstanceID, r.Session, v)
	if err != nil {
		return fmt.Errorf("ledger: indexing recording %s: %w", r.ID(), err)
	}
	return nil
}

func (s *sqliteBackend) recording(ctx context.Context, request, instance, session string) (Recording, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM recordings WHERE request_id = ? AND instance_id = ? AND session = ?`, request, instance, session).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return Recording{}, recordingNotFound(request, instance, session)
	}
	if err != nil {
		return Recording{}, fmt.Errorf("ledger: reading recording %s/%s/%s: %w", request, instance, session, err)
	}
	return decodeRecording(v)
}

func (s *sqliteBackend) recordings(ctx context.Context, f RecordingFilter) ([]Recording, error) {
	var where []string
	var args []any
	for _, c := range []struct{ column, v string }{{"request_id", f.RequestID}, {"instance_id", f.InstanceID}} {
		if c.v != "" {
			where, args = append(where, c.column+" = ?"), append(args, c.v)
		}
	}
	q := `SELECT value FROM recordings`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("ledger: listing recordings: %w", err)
	}
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("ledger: listing recordings: %w", err)
		}
		r, err := decodeRecording(v)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ledger: listing recordings: %w", err)
	}
	return out, nil
}

func (s *sqliteBackend) deleteRecording(ctx context.Context, request, instance, session string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM recordings WHERE request_id = ? AND instance_id = ? AND session = ?`, request, instance, session); err != nil {
		return fmt.Errorf("ledger: deleting recording %s/%s/%s: %w", request, instance, session, err)
	}
	return nil
}
