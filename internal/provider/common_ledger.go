package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// ledgerURL picks where grants and the audit trail are recorded: the
// provider's ledger setting, else PASSPORT_LEDGER, else a sqlite file in
// the user's state directory, the embedded default for one machine.
func ledgerURL(setting string) (string, error) {
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
			return "", fmt.Errorf("no ledger is set and there is no home directory for the default one: set ledger in the provider block or PASSPORT_LEDGER: %w", err)
		}
		dir = filepath.Join(home, ".local", "state")
	}
	dir = filepath.Join(dir, "passport")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating the default ledger's directory: %w", err)
	}
	return "sqlite://" + filepath.Join(dir, "ledger.db"), nil
}

// openLedger opens the ledger named by the provider's setting.
func openLedger(ctx context.Context, setting string, clients *awsconfig.Clients) (*ledger.Ledger, error) {
	url, err := ledgerURL(setting)
	if err != nil {
		return nil, err
	}
	l, err := ledger.Open(ctx, url, ledger.Options{DynamoDB: ledger.DynamoDBOptions{Client: clients.DynamoDB}})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", url, err)
	}
	return l, nil
}
