package provider

import (
	"context"
	"fmt"

	"github.com/passport-access/terraform-provider-passport/internal/awsconfig"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

// openLedger opens the ledger named by the provider's setting, or the
// default one ledger.Resolve picks.
func openLedger(ctx context.Context, setting string, clients *awsconfig.Clients) (*ledger.Ledger, error) {
	url, err := ledger.Resolve(setting)
	if err != nil {
		return nil, err
	}
	l, err := ledger.Open(ctx, url, ledger.Options{DynamoDB: ledger.DynamoDBOptions{Client: clients.DynamoDB}})
	if err != nil {
		return nil, fmt.Errorf("ledger %s: %w", url, err)
	}
	return l, nil
}
