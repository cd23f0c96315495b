package ledger

import (
	"context"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// DynamoDBOptions says how to reach the table of a dynamodb:// ledger.
type DynamoDBOptions struct {
	// Client is used when set; otherwise one is built from Config.
	Client *dynamodb.Client
	Config aws.Config
	// CreateTable creates the table and its indexes when it is missing,
	// and waits until they are usable.
	CreateTable bool
}

// dynamoBackend keeps the ledger in one DynamoDB table shared by several
// machines. Every write is a single conditional item write: DynamoDB-
// compatible servers without transactions (dynalite) serve it fully.
//
// Layout (one table):
//
//	grant    pk "grant#<id>", sk 0
//	event    pk "audit",      sk <seq>
//
// A grant's notices, its outbox mark and its delivery record are
// attributes of its own item (notice.go): a write and the notices it makes
// are one conditional write. Index "outbox" (outbox_part, outbox_at) is
// sparse like "due": only grants with notices some sink has not been sent
// carry outbox_part.
//
// Index "due" (due_part, due_at) is sparse: only open grants carry due_part,
// so the reconciler's query reads the open grants that are due and nothing
// else. All open grants share one index partition, which takes about a
// thousand writes a second: far above the rate at which people request
// access. Index "state" (state, expires_at) serves List. Both project all
// attributes, so a pass needs no read per grant; being indexes, they are
// eventually consistent: a grant that became due a moment ago may show up
// one pass later, and Acquire (a consistent conditional write) is what
// decides who acts on it.
//
// Permissions: dynamodb:GetItem, PutItem, UpdateItem, DeleteItem and
// Query on the table and its indexes; DescribeTable and CreateTable too
// with CreateTable; DescribeTimeToLive and UpdateTimeToLive for Init.
//
// The trail lives in one partition: the chain is serial by nature, and a
// partition takes about a thousand writes a second, far above Passport's
// event rate. An append reads the last event and puts the next seq with
// attribute_not_exists; of two racing appenders one wins and the other
// re-reads and retries, so the chain never forks.
type dynamoBackend struct {
	c     *dynamodb.Client
	table string
}

const (
	dueIndex    = "due"
	stateIndex  = "state"
	outboxIndex = "outbox"
	outboxPart  = "outbox"
	duePart     = "open"
	auditPK     = "audit"
	grantPK     = "grant#"

	// The recordings' indexes (see recordingsPK).
	recordingInstanceIndex = "recording_instance"
	recordingRequestIndex  = "recording_request"
)

func openDynamoDB(ctx context.Context, table string, o DynamoDBOptions) (*dynamoBackend, error) {
	c := o.Client
	if c == nil {
		if o.Config.Region == "" {
			return nil, fmt.Errorf("ledger: dynamodb://%s needs an AWS region (set the provider's region or AWS_REGION)", table)
		}
		c = dynamodb.NewFromConfig(o.Config)
	}
	d := &dynamoBackend{c: c, table: table}
	if o.CreateTable {
		if _, err := d.createTable(ctx); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *dynamoBackend) close() error { return nil }

// createTable creates the table and its indexes when the table is missing
// and waits until they are usable; created says whether it made them.
func (d *dynamoBackend) createTable(ctx context.Context) (created bool, err error) {
	_, err = d.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &d.table})
	var missing *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &missing) {
		return false, d.fail("looking up table", err)
	}
	if err != nil {
		created = true
		_, err = d.c.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:              &d.table,
			BillingMode:            types.BillingModePayPerRequest,
			AttributeDefinitions:   keyAttributes(),
			KeySchema:              keySchema("pk", "sk"),
			GlobalSecondaryIndexes: ledgerIndexes(),
		})
		var inUse *types.ResourceInUseException
		if err != nil && !errors.As(err, &inUse) {
			return false, d.fail("creating table", err)
		}
	}
	return created, d.waitActive(ctx)
}

// ledgerIndexes are the table's indexes, in the order Passport came to
// have them; each projects every attribute.
func ledgerIndexes() []types.GlobalSecondaryIndex {
	var ixs []types.GlobalSecondaryIndex
	for _, ix := range []struct{ name, hash, rng string }{{dueIndex, "due_part", "due_at"}, {stateIndex, "state", "expires_at"},
		{outboxIndex, "outbox_part", "outbox_at"}, {recordingInstanceIndex, "instance_id", "sk"}, {recordingRequestIndex, "request_id", "sk"}} {
		ixs = append(ixs, types.GlobalSecondaryIndex{IndexName: aws.String(ix.name), KeySchema: keySchema(ix.hash, ix.rng),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll}})
	}
	return ixs
}

// keyAttributes defines every attribute the table or an index keys on.
func keyAttributes() []types.AttributeDefinition {
	s, n := types.ScalarAttributeTypeS, types.ScalarAttributeTypeN
	var defs []types.AttributeDefinition
	for _, a := range []struct {
		name string
		typ  types.ScalarAttributeType
	}{{"pk", s}, {"sk", n}, {"due_part", s}, {"due_at", n}, {"state", s}, {"expires_at", n},
		{"outbox_part", s}, {"outbox_at", n}, {"instance_id", s}, {"request_id", s}} {
		defs = append(defs, types.AttributeDefinition{AttributeName: aws.String(a.name), AttributeType: a.typ})
	}
	return defs
}

func keySchema(hash, rng string) []types.KeySchemaElement {
	return []types.KeySchemaElement{
		{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash},
		{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange},
	}
}

// waitActive polls instead of using the SDK's waiter, whose first wait is
// 20 seconds; a local server is ready in well under one.
func (d *dynamoBackend) waitActive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for {
		out, err := d.c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &d.table})
		if err != nil {
			return d.fail("waiting for table", err)
		}
		ready := out.Table.TableStatus == types.TableStatusActive
		for _, ix := range out.Table.GlobalSecondaryIndexes {
			ready = ready && (ix.IndexStatus == "" || ix.IndexStatus == types.IndexStatusActive)
		}
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ledger: DynamoDB table %s is not active yet: %w", d.table, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (d *dynamoBackend) fail(what string, err error) error {
	var missing *types.ResourceNotFoundException
	if errors.As(err, &missing) {
		return fmt.Errorf("ledger: %s in DynamoDB table %s: the table or its indexes do not exist; create them with passport ledger init dynamodb://%s, or check the region and endpoint: %w", what, d.table, d.table, err)
	}
	return fmt.Errorf("ledger: %s in DynamoDB table %s: %w", what, d.table, err)
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func grantKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(grantPK + id), "sk": num(0)}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// item is a DynamoDB item being built or read. Empty strings and zero
// times are left out: older DynamoDB-compatible servers refuse empty
// strings, and a missing attribute keeps the sparse indexes sparse.
type item map[string]types.AttributeValue

func (it item) setS(k, v string) {
	if v != "" {
		it[k] = str(v)
	}
}

func (it item) setN(k string, v int64) {
	if v != 0 {
		it[k] = num(v)
	}
}

func (it item) s(k string) string {
	if v, ok := it[k].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func (it item) n(k string) int64 {
	if v, ok := it[k].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func grantItem(g *Grant) (item, error) {
	targets, err := encodeTargets(g.Targets)
	if err != nil {
		return nil, err
	}
	flow, err := encodeWorkflow(g)
	if err != nil {
		return nil, err
	}
	it := item(grantKey(g.ID))
	for k, v := range map[string]string{"id": g.ID, "requester": g.Requester, "reason": g.Reason, "username": g.Username,
		"targets": targets, "ca_public_key": g.CAPublicKey, "public_key": g.PublicKey, "certificate": g.Certificate,
		"state": string(g.State), "lease_holder": g.Lease.Holder, "groups": encodeGroups(g.Groups), "requester_kind": g.RequesterKind, "workflow": flow} {
		it.setS(k, v)
	}
	// The serial is a uint64; stored as its int64 bit pattern like sqlite.
	for k, v := range map[string]int64{"serial": int64(g.Serial), "issued_at": nanos(g.IssuedAt), "expires_at": nanos(g.ExpiresAt),
		"version": g.Version, "lease_until": nanos(g.Lease.Until), "created_at": nanos(g.CreatedAt), "updated_at": nanos(g.UpdatedAt)} {
		it.setN(k, v)
	}
	it["sudo"] = &types.AttributeValueMemberBOOL{Value: g.Sudo}
	if !g.DueAt.IsZero() {
		it["due_part"], it["due_at"] = str(duePart), num(nanos(g.DueAt))
	}
	return it, nil
}

// noticeItem is the attributes of g's notices that a write making notices
// sets.
func noticeItem(g *Grant) (item, error) {
	notices, err := encodeNotices(g.Notices)
	if err != nil {
		return nil, err
	}
	it := item{}
	it.setS("notices", notices)
	it.setN("notice_seq", g.NoticeSeq)
	if g.Outbox {
		it["outbox_part"], it["outbox_at"] = str(outboxPart), num(nanos(g.UpdatedAt))
	}
	return it, nil
}

func (it item) grant() (Grant, error) {
	g := Grant{
		ID: it.s("id"), Requester: it.s("requester"), RequesterKind: it.s("requester_kind"), Reason: it.s("reason"), Username: it.s("username"),
		Serial: uint64(it.n("serial")), CAPublicKey: it.s("ca_public_key"), PublicKey: it.s("public_key"), Certificate: it.s("certificate"),
		IssuedAt: fromNanos(it.n("issued_at")), ExpiresAt: fromNanos(it.n("expires_at")), State: State(it.s("state")),
		Version: it.n("version"), Lease: Lease{Holder: it.s("lease_holder"), Until: fromNanos(it.n("lease_until"))},
		CreatedAt: fromNanos(it.n("created_at")), UpdatedAt: fromNanos(it.n("updated_at")), DueAt: fromNanos(it.n("due_at")),
	}
	if v, ok := it["sudo"].(*types.AttributeValueMemberBOOL); ok {
		g.Sudo = v.Value
	}
	var err error
	if g.Groups, err = decodeGroups(g.ID, it.s("groups")); err != nil {
		return Grant{}, err
	}
	if err := g.setWorkflow(it.s("workflow")); err != nil {
		return Grant{}, err
	}
	if g.Notices, err = decodeNotices(g.ID, it.s("notices")); err != nil {
		return Grant{}, err
	}
	if g.Delivery, err = decodeDelivery(g.ID, it.s("delivery"), it.n("delivery_version")); err != nil {
		return Grant{}, err
	}
	g.NoticeSeq, g.Outbox = it.n("notice_seq"), it.s("outbox_part") != ""
	g.Targets, err = decodeTargets(g.ID, it.s("targets"))
	return g, err
}

func (d *dynamoBackend) createGrant(ctx context.Context, g *Grant) error {
	return d.createGrantAs(ctx, g, cryptorand.Text())
}

// createGrantAs creates g, its item marked with token, which is this
// create's own: the SDK retries a put whose answer was lost (a timeout, a
// 500 after the write), and the retry's condition then fails on the first
// attempt's item. Finding its own token there, the create succeeded;
// another create's item (another token) is ErrExists.
func (d *dynamoBackend) createGrantAs(ctx context.Context, g *Grant, token string) error {
	it, err := grantItem(g)
	if err != nil {
		return err
	}
	notices, err := noticeItem(g)
	if err != nil {
		return err
	}
	maps.Copy(it, notices)
	it[createToken] = str(token)
	_, err = d.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &d.table, Item: it,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if isConditionFailed(err) {
		out, getErr := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: grantKey(g.ID), ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String(createToken)})
		if getErr == nil {
			if v, ok := out.Item[createToken].(*types.AttributeValueMemberS); ok && v.Value == token {
				return nil
			}
		}
		return fmt.Errorf("grant %s: %w", g.ID, ErrExists)
	}
	if err != nil {
		return d.fail("storing grant "+g.ID, err)
	}
	return nil
}

func (d *dynamoBackend) grant(ctx context.Context, id string) (Grant, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: grantKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Grant{}, d.fail("reading grant "+id, err)
	}
	if out.Item == nil {
		return Grant{}, notFound(id)
	}
	return item(out.Item).grant()
}

// createToken is the attribute that tells a create its own item from
// another's; updates leave it as it is.
const createToken = "create_token"

// grantAttributes names every attribute grantItem may write besides the
// key; an update removes those a grant no longer has (a released lease, the
// due time of a closed grant).
var grantAttributes = []string{"id", "requester", "reason", "username", "targets", "ca_public_key", "public_key", "certificate",
	"state", "lease_holder", "groups", "serial", "issued_at", "expires_at", "version", "lease_until", "created_at", "updated_at",
	"sudo", "due_part", "due_at", "requester_kind", "workflow"}

// putGrant updates the item in place rather than replacing it, so that
// created_at, which Create wrote, stays as it is.
func (d *dynamoBackend) putGrant(ctx context.Context, g *Grant, prev int64, withNotices bool) error {
	it, err := grantItem(g)
	if err != nil {
		return err
	}
	var notices item
	if withNotices {
		if notices, err = noticeItem(g); err != nil {
			return err
		}
	}
	names := map[string]string{}
	values := map[string]types.AttributeValue{":prev": num(prev)}
	var set, remove []string
	ref := func(a string) string { return fmt.Sprintf("#a%d", slices.Index(grantAttributes, a)) }
	for i, a := range grantAttributes {
		if a == "created_at" {
			continue
		}
		names[ref(a)] = a
		switch v, ok := it[a]; {
		case ok:
			values[fmt.Sprintf(":a%d", i)] = v
			set = append(set, fmt.Sprintf("%s = :a%d", ref(a), i))
		default:
			remove = append(remove, ref(a))
		}
	}
	// The notices and the outbox mark are set only by a write that makes
	// notices; the mark keeps the time the grant first entered the outbox.
	for i, a := range []string{"notices", "notice_seq", "outbox_part", "outbox_at"} {
		v, ok := notices[a]
		if !ok {
			continue
		}
		names[fmt.Sprintf("#n%d", i)] = a
		values[fmt.Sprintf(":n%d", i)] = v
		if a == "outbox_at" {
			set = append(set, fmt.Sprintf("#n%d = if_not_exists(#n%d, :n%d)", i, i, i))
		} else {
			set = append(set, fmt.Sprintf("#n%d = :n%d", i, i))
		}
	}
	expr := "SET " + strings.Join(set, ", ")
	if len(remove) > 0 {
		expr += " REMOVE " + strings.Join(remove, ", ")
	}
	in := &dynamodb.UpdateItemInput{
		TableName: &d.table, Key: grantKey(g.ID), ReturnValues: types.ReturnValueAllNew,
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(ref("version") + " = :prev"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	}
	if !g.State.Closed() {
		in.ConditionExpression = aws.String(ref("version") + " = :prev AND " + ref("state") + " IN (:pending, :provisioning, :active, :revoking)")
		for _, s := range OpenStates() {
			values[":"+string(s)] = str(string(s))
		}
	}
	out, err := d.c.UpdateItem(ctx, in)
	if err == nil {
		g.CreatedAt = fromNanos(item(out.Attributes).n("created_at"))
		return nil
	}
	if !isConditionFailed(err) {
		return d.fail("updating grant "+g.ID, err)
	}
	cur, err := d.grant(ctx, g.ID)
	if err != nil {
		return err
	}
	return updateRefused(cur, prev)
}

func (d *dynamoBackend) queryGrants(ctx context.Context, what string, in *dynamodb.QueryInput) ([]Grant, error) {
	in.TableName = &d.table
	var out []Grant
	pages := dynamodb.NewQueryPaginator(d.c, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, d.fail("listing "+what+" grants", err)
		}
		for _, raw := range page.Items {
			g, err := item(raw).grant()
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
	}
	return out, nil
}

func (d *dynamoBackend) grantsInState(ctx context.Context, s State) ([]Grant, error) {
	return d.queryGrants(ctx, string(s), &dynamodb.QueryInput{
		IndexName:                 aws.String(stateIndex),
		KeyConditionExpression:    aws.String("#state = :state"),
		ExpressionAttributeNames:  map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":state": str(string(s))},
	})
}

func (d *dynamoBackend) dueGrants(ctx context.Context, now time.Time) ([]Grant, error) {
	return d.queryGrants(ctx, "due", &dynamodb.QueryInput{
		IndexName:                 aws.String(dueIndex),
		KeyConditionExpression:    aws.String("due_part = :open AND due_at <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":open": str(duePart), ":now": num(nanos(now))},
	})
}

func (d *dynamoBackend) setLease(ctx context.Context, id string, l Lease, holder string, now time.Time) (Grant, error) {
	in := &dynamodb.UpdateItemInput{
		TableName: &d.table, Key: grantKey(id), ReturnValues: types.ReturnValueAllNew,
		UpdateExpression:          aws.String("SET lease_holder = :holder, lease_until = :until ADD version :one"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND (attribute_not_exists(lease_holder) OR lease_until <= :now OR lease_holder = :holder)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":holder": str(holder), ":until": num(nanos(l.Until)), ":now": num(nanos(now)), ":one": num(1)},
	}
	if l.Holder == "" {
		in.UpdateExpression = aws.String("REMOVE lease_holder, lease_until ADD version :one")
		in.ConditionExpression = aws.String("lease_holder = :holder")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":holder": str(holder), ":one": num(1)}
	}
	out, err := d.c.UpdateItem(ctx, in)
	if err == nil {
		return item(out.Attributes).grant()
	}
	if !isConditionFailed(err) {
		return Grant{}, d.fail("leasing grant "+id, err)
	}
	cur, err := d.grant(ctx, id)
	if err != nil {
		return Grant{}, err
	}
	return Grant{}, leaseRefused(cur, now)
}

func eventItem(e *Event) item {
	it := item{"pk": str(auditPK), "sk": num(e.Seq)}
	for k, v := range map[string]string{"actor": e.Actor, "action": string(e.Action), "grant_id": e.GrantID, "target": e.Target,
		"subject": e.Subject, "detail": e.Detail, "prev_hash": e.PrevHash, "hash": e.Hash} {
		it.setS(k, v)
	}
	it.setN("time", nanos(e.Time))
	return it
}

func (it item) event() Event {
	return Event{Seq: it.n("sk"), Time: fromNanos(it.n("time")), Actor: it.s("actor"), Action: Action(it.s("action")),
		GrantID: it.s("grant_id"), Target: it.s("target"), Subject: it.s("subject"), Detail: it.s("detail"),
		PrevHash: it.s("prev_hash"), Hash: it.s("hash")}
}

// appendAttempts bounds the retries of one append under contention; each
// lost race means another event was stored, so the trail is moving.
const appendAttempts = 100

func (d *dynamoBackend) appendEvent(ctx context.Context, e Event) (Event, error) {
	for attempt := 1; ; attempt++ {
		last, err := d.lastEvent(ctx)
		if err != nil {
			return Event{}, err
		}
		e.seal(last.Seq, last.Hash)
		_, err = d.c.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &d.table, Item: eventItem(&e),
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		if err == nil {
			return e, nil
		}
		if !isConditionFailed(err) {
			return Event{}, d.fail("appending "+e.String(), err)
		}
		if attempt == appendAttempts {
			return Event{}, fmt.Errorf("ledger: appending %s: lost the race for the next seq %d times; the trail is too busy, try again", e.String(), attempt)
		}
		// Jitter spreads appenders that lost to the same winner.
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-time.After(time.Duration(rand.Int64N(int64(attempt)*int64(time.Millisecond) + 1))):
		}
	}
}

func (d *dynamoBackend) lastEvent(ctx context.Context) (Event, error) {
	out, err := d.c.Query(ctx, &dynamodb.QueryInput{
		TableName: &d.table, ConsistentRead: aws.Bool(true), ScanIndexForward: aws.Bool(false), Limit: aws.Int32(1),
		KeyConditionExpression:    aws.String("pk = :audit"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":audit": str(auditPK)},
	})
	if err != nil {
		return Event{}, d.fail("reading the audit trail's last event", err)
	}
	if len(out.Items) == 0 {
		return Event{}, nil
	}
	return item(out.Items[0]).event(), nil
}

// events reads the whole trail in order and leaves filtering to Ledger: a
// FilterExpression would save bandwidth but not read capacity, which
// DynamoDB charges before filtering.
func (d *dynamoBackend) events(ctx context.Context, f Filter, fn func(Event) error) error {
	pages := dynamodb.NewQueryPaginator(d.c, &dynamodb.QueryInput{
		TableName: &d.table, ConsistentRead: aws.Bool(true), ScanIndexForward: aws.Bool(!f.newestFirst),
		KeyConditionExpression:    aws.String("pk = :audit"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":audit": str(auditPK)},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return d.fail("reading the audit trail", err)
		}
		for _, raw := range page.Items {
			if err := fn(item(raw).event()); err != nil {
				return err
			}
		}
	}
	return nil
}

// Entries are items of their own partition each: pk "entry#<kind>#<key>",
// sk 0, with the value, the expiry in nanoseconds (what decides), and
// "ttl" in seconds for DynamoDB's own expiry, which removes them within
// days of expiring where the table has TTL on that attribute.
const entryPK = "entry#"

func entryKey(kind, key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": str(entryPK + kind + "#" + key), "sk": num(0)}
}

func (d *dynamoBackend) putEntry(ctx context.Context, e Entry, now time.Time) error {
	it := item(entryKey(e.Kind, e.Key))
	it["value"] = &types.AttributeValueMemberB{Value: nonNil(e.Value)}
	it["entry_expires"] = num(nanos(e.Expires))
	it["ttl"] = num(e.Expires.Unix() + 1)
	_, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &d.table, Item: it,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR entry_expires <= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": num(nanos(now))},
	})
	if isConditionFailed(err) {
		return fmt.Errorf("%s %.60s: %w", e.Kind, e.Key, ErrExists)
	}
	if err != nil {
		return d.fail("storing "+e.Kind, err)
	}
	return nil
}

func (d *dynamoBackend) entry(ctx context.Context, kind, key string) (Entry, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: entryKey(kind, key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Entry{}, d.fail("reading "+kind, err)
	}
	if out.Item == nil {
		return Entry{}, entryNotFound(kind, key)
	}
	return item(out.Item).entry(kind, key), nil
}

func (d *dynamoBackend) takeEntry(ctx context.Context, kind, key string) (Entry, error) {
	out, err := d.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &d.table, Key: entryKey(kind, key),
		ConditionExpression: aws.String("attribute_exists(pk)"),
		ReturnValues:        types.ReturnValueAllOld,
	})
	if isConditionFailed(err) {
		return Entry{}, entryNotFound(kind, key)
	}
	if err != nil {
		return Entry{}, d.fail("taking "+kind, err)
	}
	return item(out.Attributes).entry(kind, key), nil
}

func (it item) entry(kind, key string) Entry {
	e := Entry{Kind: kind, Key: key, Expires: fromNanos(it.n("entry_expires"))}
	if v, ok := it["value"].(*types.AttributeValueMemberB); ok {
		e.Value = v.Value
	}
	return e
}

func (d *dynamoBackend) outboxGrants(ctx context.Context) ([]Grant, error) {
	return d.queryGrants(ctx, "outbox", &dynamodb.QueryInput{
		IndexName:                 aws.String(outboxIndex),
		KeyConditionExpression:    aws.String("outbox_part = :outbox"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":outbox": str(outboxPart)},
	})
}

func (d *dynamoBackend) putDelivery(ctx context.Context, id string, dl Delivery, prev int64) error {
	doc, err := encodeDelivery(dl)
	if err != nil {
		return err
	}
	cond := "attribute_exists(pk) AND delivery_version = :prev"
	values := map[string]types.AttributeValue{":doc": str(doc), ":version": num(dl.Version), ":prev": num(prev)}
	if prev == 0 {
		cond = "attribute_exists(pk) AND attribute_not_exists(delivery_version)"
		delete(values, ":prev")
	}
	_, err = d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.table, Key: grantKey(id),
		UpdateExpression:          aws.String("SET delivery = :doc, delivery_version = :version"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
	})
	if isConditionFailed(err) {
		if _, err := d.grant(ctx, id); err != nil {
			return err
		}
		return &ConflictError{GrantID: id, Version: prev}
	}
	if err != nil {
		return d.fail("recording the delivery of grant "+id+"'s notices", err)
	}
	return nil
}

func (d *dynamoBackend) settle(ctx context.Context, id string, through, version int64) error {
	cond := "notice_seq = :through AND delivery_version = :version"
	values := map[string]types.AttributeValue{":through": num(through), ":version": num(version)}
	if version == 0 {
		cond = "notice_seq = :through AND attribute_not_exists(delivery_version)"
		delete(values, ":version")
	}
	_, err := d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &d.table, Key: grantKey(id),
		UpdateExpression:          aws.String("REMOVE outbox_part, outbox_at"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
	})
	if err != nil && !isConditionFailed(err) {
		return d.fail("taking grant "+id+" out of the outbox", err)
	}
	return nil
}

// Recordings share one partition, pk "recordings", like the audit trail:
// the full listing (and the reconciler's search for expired ones) is one
// Query, and they are written about as often as events. The sort key is a
// number (the table's sk is numeric): the first 15 bytes of the SHA-256
// of "<request>/<instance>/<session>" in decimal, 36 digits of
// DynamoDB's 38, so two sessions never share one. The index itself is the
// attribute "recording" (JSON).
//
// Reads by host or by request go through the sparse indexes
// "recording_instance" (instance_id, sk) and "recording_request"
// (request_id, sk): only recording items carry those attributes, so a
// collection's "what is stored from this host" reads that host's
// recordings and no other, however many a year's retention holds. Being
// indexes they are eventually consistent; the callers tolerate that (a
// session indexed a moment ago is pruned from its host by the next
// collection instead of this one) and GetRecording stays consistent.
// Items written before the indexes lack instance_id: Init gives it to
// them (backfillRecordings) before it adds the indexes, and a table
// without the indexes is read the old way, the whole partition.
const recordingsPK = "recordings"

func recordingKey(request, instance, session string) map[string]types.AttributeValue {
	sum := sha256.Sum256([]byte(request + "/" + instance + "/" + session))
	sk := new(big.Int).SetBytes(sum[:15])
	return map[string]types.AttributeValue{"pk": str(recordingsPK), "sk": &types.AttributeValueMemberN{Value: sk.String()}}
}

func (d *dynamoBackend) putRecording(ctx context.Context, r Recording) error {
	v, err := encodeRecording(&r)
	if err != nil {
		return err
	}
	it := item(recordingKey(r.RequestID, r.InstanceID, r.Session))
	it["recording"], it["request_id"], it["instance_id"] = str(v), str(r.RequestID), str(r.InstanceID)
	if _, err := d.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &d.table, Item: it}); err != nil {
		return d.fail("indexing recording "+r.ID(), err)
	}
	return nil
}

func (d *dynamoBackend) recording(ctx context.Context, request, instance, session string) (Recording, error) {
	out, err := d.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: recordingKey(request, instance, session), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Recording{}, d.fail("reading recording "+request+"/"+instance+"/"+session, err)
	}
	if out.Item == nil {
		return Recording{}, recordingNotFound(request, instance, session)
	}
	return decodeRecording(item(out.Item).s("recording"))
}

// recordings queries the index of the request when f names one (a
// request's recordings are few; its host, if f names one too, is picked
// here), else the host's, else the whole partition.
func (d *dynamoBackend) recordings(ctx context.Context, f RecordingFilter) ([]Recording, error) {
	var in *dynamodb.QueryInput
	switch {
	case f.RequestID != "":
		in = recordingIndexQuery(recordingRequestIndex, "request_id", f.RequestID)
	case f.InstanceID != "":
		in = recordingIndexQuery(recordingInstanceIndex, "instance_id", f.InstanceID)
	default:
		return d.queryRecordings(ctx, recordingsPartitionQuery(), f)
	}
	out, err := d.queryRecordings(ctx, in, f)
	if missingIndex(err, aws.ToString(in.IndexName)) {
		// A table Init has not given the indexes yet: read it as
		// before them, all of it.
		return d.queryRecordings(ctx, recordingsPartitionQuery(), f)
	}
	return out, err
}

func recordingIndexQuery(index, attr, v string) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String("#k = :v"),
		ExpressionAttributeNames:  map[string]string{"#k": attr},
		ExpressionAttributeValues: map[string]types.AttributeValue{":v": str(v)},
	}
}

func recordingsPartitionQuery() *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": str(recordingsPK)},
		ConsistentRead:            aws.Bool(true),
	}
}

// queryRecordings runs in and keeps the recordings f selects.
func (d *dynamoBackend) queryRecordings(ctx context.Context, in *dynamodb.QueryInput, f RecordingFilter) ([]Recording, error) {
	in.TableName = &d.table
	var out []Recording
	p := dynamodb.NewQueryPaginator(d.c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if in.IndexName != nil && missingIndex(err, *in.IndexName) {
				return nil, err
			}
			return nil, d.fail("listing recordings", err)
		}
		for _, it := range page.Items {
			r, err := decodeRecording(item(it).s("recording"))
			if err != nil {
				return nil, err
			}
			if f.match(&r) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// missingIndex reports the answer to a query of an index the table does
// not have: DynamoDB's ValidationException "The table does not have the
// specified index: <name>", or moto's ResourceNotFoundException "Invalid
// index: <name> ...".
func missingIndex(err error, index string) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	code, msg := api.ErrorCode(), api.ErrorMessage()
	return (code == "ValidationException" || code == "ResourceNotFoundException") && strings.Contains(msg, "index") && strings.Contains(msg, index)
}

// backfillRecordings gives instance_id (and request_id) to the recording
// items written before the recordings' indexes, so the indexes hold them
// too; it returns how many it changed. A recording deleted meanwhile is
// left deleted.
func (d *dynamoBackend) backfillRecordings(ctx context.Context) (int, error) {
	in := recordingsPartitionQuery()
	in.TableName = &d.table
	in.FilterExpression = aws.String("attribute_not_exists(instance_id) OR attribute_not_exists(request_id)")
	n := 0
	p := dynamodb.NewQueryPaginator(d.c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, d.fail("finding recordings to index", err)
		}
		for _, raw := range page.Items {
			r, err := decodeRecording(item(raw).s("recording"))
			if err != nil {
				return n, err
			}
			_, err = d.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: &d.table, Key: map[string]types.AttributeValue{"pk": raw["pk"], "sk": raw["sk"]},
				UpdateExpression:          aws.String("SET instance_id = :i, request_id = :r"),
				ConditionExpression:       aws.String("attribute_exists(pk)"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":i": str(r.InstanceID), ":r": str(r.RequestID)},
			})
			if isConditionFailed(err) {
				continue
			}
			if err != nil {
				return n, d.fail("indexing recording "+r.ID(), err)
			}
			n++
		}
	}
	return n, nil
}

func (d *dynamoBackend) deleteRecording(ctx context.Context, request, instance, session string) error {
	if _, err := d.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &d.table, Key: recordingKey(request, instance, session)}); err != nil {
		return d.fail("deleting recording "+request+"/"+instance+"/"+session, err)
	}
	return nil
}
