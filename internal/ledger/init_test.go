package ledger

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/passport-access/terraform-provider-passport/internal/testwait"
)

// TestInitDynamoDB: Init makes a table the ledger works in, runs again
// without harm, turns on time to live where the server has it (moto) and
// says it cannot where it has not (dynalite), and refuses a table that is
// not a ledger's.
func TestInitDynamoDB(t *testing.T) {
	for _, s := range []*server{&moto, &dynalite} {
		t.Run(s.name, func(t *testing.T) {
			endpoint, err := s.endpoint()
			if err != nil {
				t.Skipf("adding an index to a table is checked on moto alone (dynalite never builds one), and moto is not here: %v (scripts/install.sh installs it)", err)
			}
			ctx := context.Background()
			c := dynamoClient(endpoint)
			table := fmt.Sprintf("passport-init-%d", tableSeq.Add(1))
			t.Cleanup(func() { c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table}) })
			url := "dynamodb://" + table
			o := Options{DynamoDB: DynamoDBOptions{Client: c}}

			// Before init, the ledger says how to make its table.
			l, err := Open(ctx, url, o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Get(ctx, "ar-0000000000000001"); err == nil || !strings.Contains(err.Error(), "passport ledger init "+url) {
				t.Fatalf("a ledger with no table: %v; want the error to name passport ledger init", err)
			}

			res, err := Init(ctx, url, o)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Created {
				t.Errorf("the first init did not create the table: %+v", res)
			}
			// moto has time to live; dynalite reads its setting but cannot
			// change it.
			wantTTL := map[string]string{"moto_server": "enabled", "dynalite": "not supported by this server (UnknownOperationException for UpdateTimeToLive)"}[s.name]
			if res.TTL != wantTTL {
				t.Errorf("init said TTL %q, want %q", res.TTL, wantTTL)
			}
			ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
			enabled := err == nil && ttl.TimeToLiveDescription.TimeToLiveStatus == types.TimeToLiveStatusEnabled && aws.ToString(ttl.TimeToLiveDescription.AttributeName) == TTLAttribute
			if enabled != (res.TTL == "enabled") {
				t.Errorf("init said TTL %q; the server reports %+v, %v", res.TTL, ttl, err)
			}

			again, err := Init(ctx, url, o)
			if err != nil || again.Created || (res.TTL == "enabled" && again.TTL != "already enabled") {
				t.Fatalf("init again: %+v, %v; want nothing created and TTL already enabled", again, err)
			}

			// The table works: a grant goes in and comes back, an entry
			// carries its ttl.
			g, err := l.Create(ctx, Grant{ID: "ar-0000000000000001", Reason: "init test", Requester: "alice", Username: "pp-alice", State: Active,
				IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatalf("creating a grant in the initialised table: %v", err)
			}
			if got, err := l.Get(ctx, g.ID); err != nil || got.Requester != "alice" {
				t.Fatalf("reading it back: %+v, %v", got, err)
			}

			// A table that is not a ledger's is refused, saying why.
			other := table + "-other"
			if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: &other, BillingMode: types.BillingModePayPerRequest,
				AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
				KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}}}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &other}) })
			if _, err := Init(ctx, "dynamodb://"+other, o); err == nil || !strings.Contains(err.Error(), "not a Passport ledger") || !strings.Contains(err.Error(), "pk (string, hash)") {
				t.Fatalf("init of a foreign table: %v; want a refusal naming the key it lacks", err)
			}
		})
	}
}

func TestInitSQLite(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "ledger.db")
	res, err := Init(context.Background(), url, Options{})
	if err != nil || !res.Created {
		t.Fatalf("init of a new sqlite ledger: %+v, %v", res, err)
	}
	if res, err := Init(context.Background(), url, Options{}); err != nil || res.Created {
		t.Fatalf("init again: %+v, %v", res, err)
	}
	if _, err := Init(context.Background(), "postgres://x", Options{}); err == nil || !strings.Contains(err.Error(), "unknown ledger scheme") {
		t.Fatalf("an unknown scheme: %v", err)
	}
}

// A ledger table made before notifications gets its outbox index from
// init, and then holds an outbox. Not against dynalite, which answers
// UpdateTable's index Create and makes no index.
func TestInitAddsTheOutboxIndex(t *testing.T) {
	for _, s := range []*server{&moto} {
		t.Run(s.name, func(t *testing.T) {
			endpoint := s.endpointFor(t)
			ctx := context.Background()
			c := dynamoClient(endpoint)
			table := createOlderTable(t, c, "passport-old", ledgerIndexes()[:2]...)
			url := "dynamodb://" + table
			o := Options{DynamoDB: DynamoDBOptions{Client: c}, Announce: true}
			if _, err := Init(ctx, url, o); err != nil {
				t.Fatalf("init of a ledger table without the outbox index: %v", err)
			}
			l, err := Open(ctx, url, o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Create(ctx, Grant{ID: "ar-1", Requester: "alice", State: Active, IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			// moto builds an index it adds to a table in the background.
			testwait.Until(t, "the outbox index, added by init, to list the new grant", func() bool {
				box, err := l.Outbox(ctx)
				return err == nil && len(box) == 1
			})
		})
	}
}

// createOlderTable makes a ledger table as an older Passport made it: the
// table's key and the indexes given, nothing else, and waits until it is
// usable. It goes at the test's end.
func createOlderTable(t *testing.T, c *dynamodb.Client, prefix string, indexes ...types.GlobalSecondaryIndex) string {
	t.Helper()
	ctx := context.Background()
	table := fmt.Sprintf("%s-%d", prefix, tableSeq.Add(1))
	keys := []string{"pk", "sk"}
	for _, ix := range indexes {
		for _, k := range ix.KeySchema {
			keys = append(keys, aws.ToString(k.AttributeName))
		}
	}
	var defs []types.AttributeDefinition
	for _, d := range keyAttributes() {
		if slices.Contains(keys, aws.ToString(d.AttributeName)) {
			defs = append(defs, d)
		}
	}
	if _, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{TableName: &table, BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: defs, KeySchema: keySchema("pk", "sk"), GlobalSecondaryIndexes: indexes}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table}) })
	// dynalite makes a table in the background, even with --createTableMs 0.
	if err := (&dynamoBackend{c: c, table: table}).waitActive(ctx); err != nil {
		t.Fatal(err)
	}
	return table
}
