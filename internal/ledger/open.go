package ledger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Open opens the ledger a URL names:
//
//	sqlite:///var/lib/passport/ledger.db   a file on this machine (created 0600)
//	sqlite://ledger.db                     relative to the working directory
//	dynamodb://passport-ledger             a DynamoDB table (o.DynamoDB says how to reach it)
func Open(ctx context.Context, url string, o Options) (*Ledger, error) {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return nil, fmt.Errorf("ledger: %q is not a ledger URL; use sqlite:///path/to/ledger.db or dynamodb://table-name", url)
	}
	switch scheme {
	case "sqlite":
		if rest == "" {
			return nil, fmt.Errorf("ledger: %q names no file; use sqlite:///path/to/ledger.db", url)
		}
		b, err := openSQLite(ctx, rest)
		if err != nil {
			return nil, err
		}
		return newLedger(b, o), nil
	case "dynamodb":
		if !tableName.MatchString(rest) {
			return nil, fmt.Errorf("ledger: %q: a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.'", url)
		}
		b, err := openDynamoDB(ctx, rest, o.DynamoDB)
		if err != nil {
			return nil, err
		}
		return newLedger(b, o), nil
	}
	return nil, fmt.Errorf("ledger: unknown ledger scheme %q in %q; use sqlite:// or dynamodb://", scheme, url)
}

var tableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// Resolve picks the ledger a person's tools use when they are told of none:
// setting when given, else PASSPORT_LEDGER, else a sqlite file in the
// user's state directory ($XDG_STATE_HOME or ~/.local/state, under
// passport/), created 0700. Services and reconcilers are always told; this
// is for one person's machine.
func Resolve(setting string) (string, error) {
	if setting != "" {
		return setting, nil
	}
	if env := os.Getenv("PASSPORT_LEDGER"); env != "" {
		return env, nil
	}
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no ledger is set and there is no home directory for the default one: name one (the provider's ledger setting, or PASSPORT_LEDGER): %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	dir = filepath.Join(dir, "passport")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the default ledger's directory: %w", err)
	}
	return "sqlite://" + filepath.Join(dir, "ledger.db"), nil
}
