package ledger

import (
	"context"
	"fmt"
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
