package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"

	"github.com/passport-access/terraform-provider-passport/internal/testwait"
)

func testRecording(request, instance, session string, start, expires time.Time) Recording {
	return Recording{
		RequestID: request, InstanceID: instance, Session: session, Username: "pp-abc123", Subject: "alice",
		Serials: []uint64{7, 1 << 63}, KeyID: "passport:" + request + ":alice", Start: start, End: start.Add(time.Minute),
		Bucket: "passport-recordings", Key: RecordingKey(request, instance, session), Size: 1234,
		SHA256: strings.Repeat("ab", 32), CollectedAt: start.Add(2 * time.Minute), Expires: expires,
	}
}

func TestRecordingIndex(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		now := c.Now()
		a := testRecording("req-1", "i-0aaa", "20261124-090000-AbCdEf", now, now.Add(24*time.Hour))
		b := testRecording("req-1", "i-0bbb", "20261124-085900-Zz0011", now.Add(-time.Minute), now.Add(24*time.Hour))
		other := testRecording("req-2", "i-0aaa", "20261124-090500-QqWwEe", now, now.Add(time.Hour))
		for _, r := range []Recording{a, b, other} {
			if err := l.PutRecording(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, err := l.GetRecording(ctx, a.RequestID, a.InstanceID, a.Session)
		if err != nil {
			t.Fatal(err)
		}
		if got.SHA256 != a.SHA256 || got.Size != a.Size || !got.Start.Equal(a.Start) || len(got.Serials) != 2 || got.Serials[1] != 1<<63 || got.KeyID != a.KeyID {
			t.Errorf("GetRecording = %+v, want %+v", got, a)
		}

		list, err := l.Recordings(ctx, RecordingFilter{RequestID: "req-1"})
		if err != nil {
			t.Fatal(err)
		}
		if ids := recordingIDs(list); ids != a.ID()+" "+b.ID() {
			t.Errorf("recordings of req-1: %s", ids)
		}
		list, _ = l.Recordings(ctx, RecordingFilter{InstanceID: "i-0aaa"})
		if ids := recordingIDs(list); ids != a.ID()+" "+other.ID() {
			t.Errorf("recordings on i-0aaa: %s", ids)
		}

		// A session collected again (it had not ended) replaces its index.
		a.Size, a.SHA256 = 99999, strings.Repeat("cd", 32)
		if err := l.PutRecording(ctx, a); err != nil {
			t.Fatal(err)
		}
		if got, _ := l.GetRecording(ctx, a.RequestID, a.InstanceID, a.Session); got.Size != 99999 {
			t.Errorf("after a second collection the index says size %d, want 99999", got.Size)
		}
		if list, _ := l.Recordings(ctx, RecordingFilter{}); len(list) != 3 {
			t.Errorf("all recordings: %s, want 3", recordingIDs(list))
		}

		// Past its retention a recording is gone from the lists and due for
		// deletion.
		c.Advance(2 * time.Hour)
		if _, err := l.GetRecording(ctx, other.RequestID, other.InstanceID, other.Session); !errors.Is(err, ErrNotFound) {
			t.Errorf("an expired recording reads as %v, want ErrNotFound", err)
		}
		due, err := l.ExpiredRecordings(ctx)
		if err != nil || recordingIDs(due) != other.ID() {
			t.Errorf("ExpiredRecordings = %s, %v; want %s", recordingIDs(due), err, other.ID())
		}
		if err := l.DeleteRecording(ctx, other.RequestID, other.InstanceID, other.Session); err != nil {
			t.Fatal(err)
		}
		if due, _ := l.ExpiredRecordings(ctx); len(due) != 0 {
			t.Errorf("after deletion, still expired: %s", recordingIDs(due))
		}
	})
}

func TestRecordingIndexRefusesBadInput(t *testing.T) {
	l := openTestSQLite(t, Options{Now: newClock().Now})
	now := newClock().Now()
	for name, edit := range map[string]func(r *Recording){
		"request with a slash": func(r *Recording) { r.RequestID = "req/../x" },
		"empty session":        func(r *Recording) { r.Session = "" },
		"short digest":         func(r *Recording) { r.SHA256 = "abc" },
		"no retention":         func(r *Recording) { r.Expires = time.Time{} },
		"negative size":        func(r *Recording) { r.Size = -1 },
	} {
		r := testRecording("req-1", "i-0aaa", "s1", now, now.Add(time.Hour))
		edit(&r)
		if err := l.PutRecording(context.Background(), r); err == nil || !strings.Contains(err.Error(), "cannot be indexed") {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}

func recordingIDs(rs []Recording) string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.ID())
	}
	return strings.Join(ids, " ")
}

// TestRecordingFilters: with the recordings of several requests on
// several hosts, each filter returns exactly its own, live ones; on
// DynamoDB a filtered read queries the host's or the request's index and
// reads only the items under that key (ScannedCount counts what a query
// read, before any filter: what DynamoDB charges for).
func TestRecordingFilters(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		var log *queryLog
		if d, ok := l.b.(*dynamoBackend); ok {
			log = &queryLog{}
			var err error
			if l, err = Open(ctx, "dynamodb://"+d.table, Options{Now: c.Now, DynamoDB: DynamoDBOptions{Client: log.client(d.c)}}); err != nil {
				t.Fatal(err)
			}
		}
		stored := fleetRecordings(c.Now())
		for _, r := range stored {
			if err := l.PutRecording(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(2 * time.Hour) // past the retention of those that keep an hour
		now := c.Now()
		for _, f := range []RecordingFilter{
			{InstanceID: "i-01"}, {InstanceID: "i-02"}, {InstanceID: "i-03"}, {InstanceID: "i-04"}, {InstanceID: "i-99"},
			{RequestID: "req-1"}, {RequestID: "req-2"}, {RequestID: "req-3"}, {RequestID: "req-9"},
			{RequestID: "req-1", InstanceID: "i-02"}, {RequestID: "req-2", InstanceID: "i-01"}, {},
		} {
			var want, under []Recording
			for _, r := range stored {
				if f.match(&r) && r.Expires.After(now) {
					want = append(want, r)
				}
				if (f.RequestID == "" || f.RequestID == r.RequestID) && (f.RequestID != "" || f.InstanceID == "" || f.InstanceID == r.InstanceID) {
					under = append(under, r) // what the index's key selects, expired or not
				}
			}
			sortRecordings(want)
			got, err := l.Recordings(ctx, f)
			if err != nil {
				t.Fatalf("%+v: %v", f, err)
			}
			if recordingIDs(got) != recordingIDs(want) {
				t.Errorf("Recordings(%+v) = %s\nwant %s", f, recordingIDs(got), recordingIDs(want))
			}
			if log == nil {
				continue
			}
			index := map[bool]string{true: recordingInstanceIndex}[f.InstanceID != ""]
			if f.RequestID != "" {
				index = recordingRequestIndex
			}
			if qs := log.take(); len(qs) != 1 || qs[0].index != index || int(qs[0].scanned) != len(under) {
				t.Errorf("Recordings(%+v) made the queries %+v; want one of index %q reading %d items (of %d)", f, qs, index, len(under), len(stored))
			}
		}
		expired, err := l.ExpiredRecordings(ctx)
		if err != nil || len(expired) != 3 {
			t.Errorf("ExpiredRecordings = %s, %v; want the 3 kept an hour", recordingIDs(expired), err)
		}
	})
}

// fleetRecordings are the sessions of three requests on four hosts; the
// third request's keep an hour, the others a day.
func fleetRecordings(now time.Time) []Recording {
	var rs []Recording
	for _, p := range []struct {
		request, instance string
		sessions          int
	}{{"req-1", "i-01", 2}, {"req-1", "i-02", 1}, {"req-2", "i-01", 1}, {"req-2", "i-02", 2}, {"req-2", "i-03", 1}, {"req-3", "i-01", 2}, {"req-3", "i-04", 1}} {
		keep := 24 * time.Hour
		if p.request == "req-3" {
			keep = time.Hour
		}
		for s := range p.sessions {
			start := now.Add(time.Duration(s) * time.Minute)
			rs = append(rs, testRecording(p.request, p.instance, fmt.Sprintf("20261124-09%02d00-Ab12C%d", s, s), start, start.Add(keep)))
		}
	}
	return rs
}

// TestInitIndexesRecordingsWrittenBefore: a DynamoDB ledger whose
// recordings an older Passport wrote (one partition, no instance_id, no
// recordings' indexes) answers by host and by request before init (reading
// it all, as before), and through the indexes after; init gives the old
// items what the indexes key on, and again to one an older replica writes
// after it. Init only against moto: dynalite answers UpdateTable's index
// Create and makes no index (TestInitAddsTheOutboxIndex); it refuses a
// query of a missing index as DynamoDB does, moto otherwise.
func TestInitIndexesRecordingsWrittenBefore(t *testing.T) {
	for _, s := range []*server{&moto, &dynalite} {
		t.Run(s.name, func(t *testing.T) {
			endpoint := s.endpointFor(t)
			ctx := context.Background()
			c := dynamoClient(endpoint)
			table := createOlderTable(t, c, "passport-old-recordings", ledgerIndexes()[:3]...)
			clk := newClock()
			stored := fleetRecordings(clk.Now())
			// The way Passport wrote a recording before the indexes.
			putOld := func(r Recording) {
				t.Helper()
				r.normalize()
				v, err := encodeRecording(&r)
				if err != nil {
					t.Fatal(err)
				}
				it := item(recordingKey(r.RequestID, r.InstanceID, r.Session))
				it["recording"], it["request_id"] = str(v), str(r.RequestID)
				if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: it}); err != nil {
					t.Fatal(err)
				}
			}
			for _, r := range stored {
				putOld(r)
			}

			log := &queryLog{}
			url := "dynamodb://" + table
			o := Options{Now: clk.Now, DynamoDB: DynamoDBOptions{Client: log.client(c)}}
			l, err := Open(ctx, url, o)
			if err != nil {
				t.Fatal(err)
			}
			// byHost reads i-01's recordings and says how the ledger read them.
			byHost := func() (string, []loggedQuery) {
				t.Helper()
				got, err := l.Recordings(ctx, RecordingFilter{InstanceID: "i-01"})
				if err != nil {
					t.Fatal(err)
				}
				return recordingIDs(got), log.take()
			}
			var want []Recording
			for _, r := range stored {
				if r.InstanceID == "i-01" {
					want = append(want, r)
				}
			}
			sortRecordings(want)

			if got, qs := byHost(); got != recordingIDs(want) || len(qs) != 1 || qs[0].index != "" || int(qs[0].scanned) != len(stored) {
				t.Fatalf("before init, i-01's recordings: %s through %+v; want %s, the whole partition read", got, qs, recordingIDs(want))
			}
			if got, err := l.Recordings(ctx, RecordingFilter{RequestID: "req-2"}); err != nil || len(got) != 4 {
				t.Fatalf("before init, req-2's recordings: %s, %v; want its 4", recordingIDs(got), err)
			}
			log.take()
			if s == &dynalite {
				return // it would not build the indexes init adds
			}

			res, err := Init(ctx, url, Options{DynamoDB: DynamoDBOptions{Client: c}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Backfilled != len(stored) {
				t.Errorf("init backfilled %d recordings, want all %d", res.Backfilled, len(stored))
			}
			testwait.Until(t, "i-01's recordings through the index init added", func() bool {
				got, qs := byHost()
				return got == recordingIDs(want) && len(qs) == 1 && qs[0].index == recordingInstanceIndex && int(qs[0].scanned) == len(want)
			})
			testwait.Until(t, "req-2's 4 recordings through the request index init added", func() bool {
				got, err := l.Recordings(ctx, RecordingFilter{RequestID: "req-2"})
				qs := log.take()
				return err == nil && len(got) == 4 && len(qs) == 1 && qs[0].index == recordingRequestIndex && qs[0].scanned == 4
			})

			// An older replica still running writes one more the old way: the
			// next init indexes it.
			late := testRecording("req-4", "i-01", "20261124-100000-Late00", clk.Now(), clk.Now().Add(24*time.Hour))
			putOld(late)
			if res, err := Init(ctx, url, Options{DynamoDB: DynamoDBOptions{Client: c}}); err != nil || res.Backfilled != 1 {
				t.Fatalf("init after an old write: %+v, %v; want the one recording backfilled", res, err)
			}
			want = append(want, late)
			sortRecordings(want)
			if got, _ := byHost(); got != recordingIDs(want) {
				t.Errorf("after the second init, i-01's recordings: %s, want %s", got, recordingIDs(want))
			}
			if res, err := Init(ctx, url, Options{DynamoDB: DynamoDBOptions{Client: c}}); err != nil || res.Backfilled != 0 {
				t.Errorf("init with nothing to backfill: %+v, %v", res, err)
			}
		})
	}
}

// queryLog records the Query calls a DynamoDB client makes: the index
// each one read and how many items it read; a refused query is not one.
type queryLog struct {
	mu      sync.Mutex
	queries []loggedQuery
}

type loggedQuery struct {
	index   string
	scanned int32
}

func (q *queryLog) client(c *dynamodb.Client) *dynamodb.Client {
	return dynamodb.New(c.Options(), func(o *dynamodb.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("passport-query-log",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					out, md, err := next.HandleInitialize(ctx, in)
					qi, isQuery := in.Parameters.(*dynamodb.QueryInput)
					if qo, ok := out.Result.(*dynamodb.QueryOutput); ok && isQuery && err == nil {
						q.mu.Lock()
						q.queries = append(q.queries, loggedQuery{aws.ToString(qi.IndexName), qo.ScannedCount})
						q.mu.Unlock()
					}
					return out, md, err
				}), middleware.After)
		})
	})
}

// take returns the queries logged since the last take.
func (q *queryLog) take() []loggedQuery {
	q.mu.Lock()
	defer q.mu.Unlock()
	qs := q.queries
	q.queries = nil
	return qs
}
