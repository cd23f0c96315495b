package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEntries(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		tok := Entry{Kind: "token", Key: "sha256-of-a-token", Value: []byte(`{"name":"alice"}`), Expires: c.Now().Add(time.Hour)}
		if err := l.PutEntry(ctx, tok); err != nil {
			t.Fatal(err)
		}
		got, err := l.GetEntry(ctx, "token", tok.Key)
		if err != nil || !bytes.Equal(got.Value, tok.Value) || !got.Expires.Equal(tok.Expires) {
			t.Fatalf("GetEntry: %+v, %v; want %+v", got, err, tok)
		}
		if err := l.PutEntry(ctx, tok); !errors.Is(err, ErrExists) {
			t.Errorf("a second put of a live key: %v, want ErrExists", err)
		}
		if _, err := l.GetEntry(ctx, "code", tok.Key); !errors.Is(err, ErrNotFound) {
			t.Errorf("the same key of another kind: %v, want ErrNotFound", err)
		}

		// Past its expiry an entry is gone, and its key free again.
		c.Advance(time.Hour)
		if _, err := l.GetEntry(ctx, "token", tok.Key); !errors.Is(err, ErrNotFound) {
			t.Errorf("an expired entry reads as %v, want ErrNotFound", err)
		}
		tok.Expires = c.Now().Add(time.Minute)
		if err := l.PutEntry(ctx, tok); err != nil {
			t.Errorf("putting over an expired entry: %v", err)
		}

		// Take hands an entry out once.
		e, err := l.TakeEntry(ctx, "token", tok.Key)
		if err != nil || !bytes.Equal(e.Value, tok.Value) {
			t.Fatalf("TakeEntry: %+v, %v", e, err)
		}
		if _, err := l.TakeEntry(ctx, "token", tok.Key); !errors.Is(err, ErrNotFound) {
			t.Errorf("a second take: %v, want ErrNotFound", err)
		}
		if err := l.DeleteEntry(ctx, "token", tok.Key); err != nil {
			t.Errorf("deleting a missing entry: %v", err)
		}

		if err := l.UseOnce(ctx, "once", "saml-response-id-1", c.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		err = l.UseOnce(ctx, "once", "saml-response-id-1", c.Now().Add(time.Hour))
		if !errors.Is(err, ErrUsed) || !strings.Contains(err.Error(), "already used") {
			t.Errorf("using a value twice: %v, want ErrUsed", err)
		}
	})
}

func TestEntriesRefuseWhatTheyCannotHold(t *testing.T) {
	c := newClock()
	l := openTestSQLite(t, Options{Now: c.Now})
	ctx := context.Background()
	later := c.Now().Add(time.Hour)
	for _, e := range []Entry{
		{Kind: "", Key: "k", Expires: later},
		{Kind: "Token", Key: "k", Expires: later},
		{Kind: strings.Repeat("a", 33), Key: "k", Expires: later},
		{Kind: "token", Key: "", Expires: later},
		{Kind: "token", Key: "two words", Expires: later},
		{Kind: "token", Key: strings.Repeat("k", 257), Expires: later},
		{Kind: "token", Key: "k", Value: make([]byte, MaxEntryValue+1), Expires: later},
		{Kind: "token", Key: "k"},
		{Kind: "token", Key: "k", Expires: c.Now()},
	} {
		if err := l.PutEntry(ctx, e); err == nil {
			t.Errorf("stored %s/%.20q expiring %v", e.Kind, e.Key, e.Expires)
		}
	}
}

func TestRacingReplicasUseAValueOnce(t *testing.T) {
	const replicas, values = 4, 10
	c := newClock()
	forEachAtomicBackend(t, Options{Now: c.Now}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		var mu sync.Mutex
		won := map[string]int{}
		var wg sync.WaitGroup
		for range replicas {
			wg.Go(func() {
				for i := range values {
					key := fmt.Sprintf("code-%d", i)
					err := l.UseOnce(ctx, "once", key, c.Now().Add(time.Minute))
					if errors.Is(err, ErrUsed) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					won[key]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		for i := range values {
			if n := won[fmt.Sprintf("code-%d", i)]; n != 1 {
				t.Errorf("code-%d was accepted %d times, want once", i, n)
			}
		}
	})
}

func TestTouchKeepsAGrantFromLookingStuck(t *testing.T) {
	c := newClock()
	forEachBackend(t, Options{Now: c.Now, StuckAfter: time.Minute}, func(t *testing.T, l *Ledger) {
		ctx := context.Background()
		g, err := l.Create(ctx, testGrant("g-touch", c.Now(), time.Hour, Provisioning))
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			c.Advance(40 * time.Second)
			if err := l.Touch(ctx, g.ID); err != nil {
				t.Fatal(err)
			}
		}
		if due, _ := l.ListDue(ctx, c.Now()); len(due) != 0 {
			t.Fatalf("a grant touched every 40 s is due after 2 minutes: %v", grantIDs(due))
		}
		c.Advance(61 * time.Second)
		if due, _ := l.ListDue(ctx, c.Now()); len(due) != 1 {
			t.Fatalf("a grant nobody touched for a minute is not due: %v", grantIDs(due))
		}
		if err := l.Touch(ctx, "g-missing"); err != nil {
			t.Errorf("touching a missing grant: %v", err)
		}
	})
}
