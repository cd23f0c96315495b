package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// An Entry is a short-lived record the Passport service keeps beside the
// grants, so that every replica sharing the ledger sees it: a service
// token, a login code, a one-time value already used (a SAML response's
// ID, a signed AWS login), an idempotency key. It is not part of the audit
// trail.
//
// Keys and values are never secrets themselves: a token or a code is kept
// by its SHA-256, so reading the ledger gives nobody a way in.
type Entry struct {
	// Kind groups entries ("token", "code", "once", ...): 1 to 32 of a-z,
	// 0-9 and '-'.
	Kind string
	// Key is unique within Kind: 1 to 256 printable ASCII bytes.
	Key string
	// Value is the caller's, at most MaxEntryValue bytes.
	Value []byte
	// Expires is when the entry stops existing; required. An entry past
	// it reads as missing and may be replaced.
	Expires time.Time
}

// MaxEntryValue bounds an entry's value: a token's principal with its
// groups fits many times over, and DynamoDB's 400 KB item limit is far.
const MaxEntryValue = 64 << 10

// ErrUsed is what UseOnce returns for a value already used.
var ErrUsed = errors.New("already used")

func (e *Entry) validate() error {
	var problems []string
	if !validKind(e.Kind) {
		problems = append(problems, fmt.Sprintf("kind %.40q is not 1 to 32 of a-z, 0-9 and '-'", e.Kind))
	}
	if e.Key == "" || len(e.Key) > 256 || strings.ContainsFunc(e.Key, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		problems = append(problems, "key must be 1 to 256 printable ASCII bytes")
	}
	if len(e.Value) > MaxEntryValue {
		problems = append(problems, fmt.Sprintf("value is %d bytes, more than %d", len(e.Value), MaxEntryValue))
	}
	if e.Expires.IsZero() {
		problems = append(problems, "expires is not set")
	}
	if len(problems) > 0 {
		return fmt.Errorf("ledger: entry cannot be stored: %s", strings.Join(problems, "; "))
	}
	return nil
}

func validKind(k string) bool {
	if k == "" || len(k) > 32 {
		return false
	}
	return !strings.ContainsFunc(k, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') })
}

// PutEntry stores e if no live entry has its kind and key, and fails with
// ErrExists otherwise: of two replicas putting the same key, one wins.
func (l *Ledger) PutEntry(ctx context.Context, e Entry) error {
	if err := e.validate(); err != nil {
		return err
	}
	if !e.Expires.After(l.now()) {
		return fmt.Errorf("ledger: entry %s/%s would be stored already expired (%s)", e.Kind, e.Key, e.Expires.UTC().Format(time.RFC3339))
	}
	e.Expires = fromNanos(nanos(e.Expires))
	return l.b.putEntry(ctx, e, l.now())
}

// GetEntry returns the live entry with kind and key, or an error matching
// ErrNotFound.
func (l *Ledger) GetEntry(ctx context.Context, kind, key string) (Entry, error) {
	e, err := l.b.entry(ctx, kind, key)
	if err != nil {
		return Entry{}, err
	}
	if !e.Expires.After(l.now()) {
		return Entry{}, entryNotFound(kind, key)
	}
	return e, nil
}

// TakeEntry reads and deletes the entry with kind and key in one step, so
// that of several callers exactly one gets it: a one-time code is
// exchanged once. A missing or expired entry is an error matching
// ErrNotFound.
func (l *Ledger) TakeEntry(ctx context.Context, kind, key string) (Entry, error) {
	e, err := l.b.takeEntry(ctx, kind, key)
	if err != nil {
		return Entry{}, err
	}
	if !e.Expires.After(l.now()) {
		return Entry{}, entryNotFound(kind, key)
	}
	return e, nil
}

// DeleteEntry removes the entry with kind and key; a missing one is fine.
func (l *Ledger) DeleteEntry(ctx context.Context, kind, key string) error {
	_, err := l.b.takeEntry(ctx, kind, key)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// UseOnce records that key of kind has been used, until until, and fails
// with an error matching ErrUsed when it already was: a SAML response or a
// signed login accepted by one replica is refused by all.
func (l *Ledger) UseOnce(ctx context.Context, kind, key string, until time.Time) error {
	err := l.PutEntry(ctx, Entry{Kind: kind, Key: key, Expires: until})
	if errors.Is(err, ErrExists) {
		return fmt.Errorf("%s %.60s: %w", kind, key, ErrUsed)
	}
	return err
}

func entryNotFound(kind, key string) error { return &missingEntryError{kind, key} }

// missingEntryError matches ErrNotFound, with words about entries rather
// than grants.
type missingEntryError struct{ kind, key string }

func (e *missingEntryError) Error() string {
	return fmt.Sprintf("no %s %.60s: it does not exist or has expired", e.kind, e.key)
}

func (e *missingEntryError) Is(target error) bool { return target == ErrNotFound }
