package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// TTLAttribute is the attribute DynamoDB's time to live reads on a
// ledger's table: short-lived entries carry their expiry there in seconds.
const TTLAttribute = "ttl"

// InitResult says what Init found and did.
type InitResult struct {
	// Created is set when the table (or the sqlite file) was made now.
	Created bool
	// TTL says whether DynamoDB's time to live is on for TTLAttribute:
	// "enabled" (now), "already enabled", or why it is not, for a server
	// that does not support it. Empty for sqlite.
	TTL string
	// Backfilled counts the recordings written before the recordings'
	// indexes that Init gave the attributes those indexes read. Zero for
	// sqlite, whose index needs none.
	Backfilled int
}

// Init makes the ledger a URL names ready for use, and may be run again:
// for dynamodb://TABLE it creates the table and its indexes if they are
// missing, checks that an existing table has the ledger's keys and
// indexes, and turns on time to live where the server supports it; for
// sqlite:// it creates the file with its schema.
func Init(ctx context.Context, url string, o Options) (InitResult, error) {
	if table, ok := strings.CutPrefix(url, "dynamodb://"); ok {
		if !tableName.MatchString(table) {
			return InitResult{}, fmt.Errorf("ledger: %q: a DynamoDB table name is 3 to 255 letters, digits, '_', '-' or '.'", url)
		}
		o.DynamoDB.CreateTable = false
		d, err := openDynamoDB(ctx, table, o.DynamoDB)
		if err != nil {
			return InitResult{}, err
		}
		return d.init(ctx)
	}
	if path, ok := strings.CutPrefix(url, "sqlite://"); ok && path != "" {
		_, statErr := os.Stat(path)
		l, err := Open(ctx, url, o)
		if err != nil {
			return InitResult{}, err
		}
		return InitResult{Created: statErr != nil}, l.Close()
	}
	_, err := Open(ctx, url, o) // says what is wrong with the URL
	return InitResult{}, err
}

func (d *dynamoBackend) init(ctx context.Context) (InitResult, error) {
	created, err := d.createTable(ctx)
	if err != nil {
		return InitResult{}, err
	}
	backfilled, err := d.addIndexes(ctx)
	if err != nil {
		return InitResult{}, err
	}
	if err := d.checkSchema(ctx); err != nil {
		return InitResult{}, err
	}
	ttl, err := d.enableTTL(ctx)
	return InitResult{Created: created, TTL: ttl, Backfilled: backfilled}, err
}

// checkSchema refuses a table that is not a ledger's: its key must be
// (pk S, sk N) and it must have the due and state indexes.
func (d *dynamoBackend) checkSchema(ctx context.Context) error {
	out, err := d.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &d.table})
	if err != nil {
		return d.fail("checking table", err)
	}
	t := out.Table
	attrTypes := map[string]types.ScalarAttributeType{}
	for _, a := range t.AttributeDefinitions {
		attrTypes[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	var problems []string
	if !sameKey(t.KeySchema, "pk", "sk") || attrTypes["pk"] != types.ScalarAttributeTypeS || attrTypes["sk"] != types.ScalarAttributeTypeN {
		problems = append(problems, "its key is not pk (string, hash) and sk (number, range)")
	}
	for _, want := range ledgerIndexes() {
		name := aws.ToString(want.IndexName)
		hash, rng := aws.ToString(want.KeySchema[0].AttributeName), aws.ToString(want.KeySchema[1].AttributeName)
		i := slices.IndexFunc(t.GlobalSecondaryIndexes, func(ix types.GlobalSecondaryIndexDescription) bool { return aws.ToString(ix.IndexName) == name })
		if i < 0 || !sameKey(t.GlobalSecondaryIndexes[i].KeySchema, hash, rng) {
			problems = append(problems, fmt.Sprintf("it has no global secondary index %q on (%s, %s)", name, hash, rng))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("ledger: DynamoDB table %s exists but is not a Passport ledger: %s; name another table, or see the schema in the reconciler guide", d.table, strings.Join(problems, "; "))
	}
	return nil
}

// addIndexes adds the indexes a table made by an older Passport lacks
// (the outbox's, the recordings'), one at a time as DynamoDB requires, and
// waits until each is usable. First it gives the recordings an older
// Passport wrote the attributes the recordings' indexes key on, so that
// DynamoDB's own build of an index finds every one; it does so on every
// Init, for recordings an older replica wrote since, and returns how many.
func (d *dynamoBackend) addIndexes(ctx context.Context) (backfilled int, err error) {
	out, err := d.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &d.table})
	if err != nil {
		return 0, d.fail("checking table", err)
	}
	if !hasIndex(out.Table, dueIndex) {
		return 0, nil // no ledger: checkSchema says so
	}
	if backfilled, err = d.backfillRecordings(ctx); err != nil {
		return backfilled, err
	}
	for _, spec := range ledgerIndexes() {
		if err := d.addIndex(ctx, spec); err != nil {
			return backfilled, err
		}
	}
	return backfilled, nil
}

func hasIndex(t *types.TableDescription, name string) bool {
	return slices.ContainsFunc(t.GlobalSecondaryIndexes, func(ix types.GlobalSecondaryIndexDescription) bool { return aws.ToString(ix.IndexName) == name })
}

func (d *dynamoBackend) addIndex(ctx context.Context, spec types.GlobalSecondaryIndex) error {
	out, err := d.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &d.table})
	if err != nil {
		return d.fail("checking table", err)
	}
	name := aws.ToString(spec.IndexName)
	if hasIndex(out.Table, name) {
		return nil
	}
	create := &types.CreateGlobalSecondaryIndexAction{IndexName: spec.IndexName, KeySchema: spec.KeySchema, Projection: spec.Projection}
	// The table's definitions and the index's: some servers (moto) take
	// the list given as the whole.
	defs := slices.Clone(out.Table.AttributeDefinitions)
	for _, def := range keyAttributes() {
		named := func(a types.AttributeDefinition) bool {
			return aws.ToString(a.AttributeName) == aws.ToString(def.AttributeName)
		}
		if slices.ContainsFunc(spec.KeySchema, func(k types.KeySchemaElement) bool {
			return aws.ToString(k.AttributeName) == aws.ToString(def.AttributeName)
		}) &&
			!slices.ContainsFunc(defs, named) {
			defs = append(defs, def)
		}
	}
	add := func() error {
		_, err := d.c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: &d.table, AttributeDefinitions: defs,
			GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: create}}})
		return err
	}
	err = add()
	var invalid smithy.APIError
	if errors.As(err, &invalid) && invalid.ErrorCode() == "ValidationException" {
		// A table with provisioned capacity (or a server that treats
		// every table so: dynalite) needs capacity for the index too.
		create.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(5)}
		if t := out.Table.ProvisionedThroughput; t != nil && aws.ToInt64(t.ReadCapacityUnits) > 0 {
			create.ProvisionedThroughput = &types.ProvisionedThroughput{ReadCapacityUnits: t.ReadCapacityUnits, WriteCapacityUnits: t.WriteCapacityUnits}
		}
		err = add()
	}
	if err != nil {
		return d.fail("adding the "+name+" index", err)
	}
	return d.waitActive(ctx)
}

func sameKey(ks []types.KeySchemaElement, hash, rng string) bool {
	if len(ks) != 2 {
		return false
	}
	got := map[types.KeyType]string{}
	for _, k := range ks {
		got[k.KeyType] = aws.ToString(k.AttributeName)
	}
	return got[types.KeyTypeHash] == hash && got[types.KeyTypeRange] == rng
}

// enableTTL turns DynamoDB's time to live on for TTLAttribute. A server
// that does not serve the call (dynalite) is told apart from a refusal: the
// ledger works without TTL, its short-lived entries then stay until
// overwritten.
func (d *dynamoBackend) enableTTL(ctx context.Context) (string, error) {
	out, err := d.c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &d.table})
	if code, ok := unsupported(err); ok {
		return "not supported by this server (" + code + ")", nil
	}
	if err != nil {
		return "", d.fail("reading time to live", err)
	}
	if desc := out.TimeToLiveDescription; desc != nil {
		switch attr := aws.ToString(desc.AttributeName); {
		case (desc.TimeToLiveStatus == types.TimeToLiveStatusEnabled || desc.TimeToLiveStatus == types.TimeToLiveStatusEnabling) && attr == TTLAttribute:
			return "already enabled", nil
		case desc.TimeToLiveStatus == types.TimeToLiveStatusEnabled || desc.TimeToLiveStatus == types.TimeToLiveStatusEnabling:
			return "", fmt.Errorf("ledger: DynamoDB table %s has time to live on attribute %q; the ledger's entries expire by %q, and a table has one such attribute: turn it off first (aws dynamodb update-time-to-live), then run init again", d.table, attr, TTLAttribute)
		}
	}
	_, err = d.c.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &d.table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(TTLAttribute), Enabled: aws.Bool(true)},
	})
	if code, ok := unsupported(err); ok {
		return "not supported by this server (" + code + " for UpdateTimeToLive)", nil
	}
	if err != nil {
		return "", d.fail("turning on time to live", err)
	}
	return "enabled", nil
}

// unsupported reports an error that says the server does not serve the
// operation at all, and its code.
func unsupported(err error) (string, bool) {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return "", false
	}
	switch code := api.ErrorCode(); code {
	case "UnknownOperationException", "NotImplemented", "InvalidAction":
		return code, true
	}
	return "", false
}
