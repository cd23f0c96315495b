package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/notify"
	"github.com/passport-access/terraform-provider-passport/internal/testwait"
)

// webhook is a receiver on a real loopback HTTP server. It checks each
// request as docs/guides/notifications.md tells receivers to, with an
// HMAC of its own rather than notify's, and keeps the events it accepted
// and the reasons it refused any. While down it answers 503 to all.
type webhook struct {
	secret  []byte
	mu      sync.Mutex
	down    bool
	tries   int
	got     []notify.Event
	refused []string
}

func (h *webhook) setDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

func newWebhook(t *testing.T) (*webhook, *httptest.Server) {
	h := &webhook{secret: []byte(strings.Repeat("s3cr3t-", 6))}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tries++
	if h.down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	refuse := func(why string) {
		h.refused = append(h.refused, why)
		http.Error(w, why, http.StatusUnauthorized)
	}
	if err != nil {
		refuse(err.Error())
		return
	}
	ts := r.Header.Get("Passport-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		refuse(fmt.Sprintf("stale or missing Passport-Timestamp %q", ts))
		return
	}
	mac := hmac.New(sha256.New, h.secret)
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	if want := "v1=" + hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(want), []byte(r.Header.Get("Passport-Signature"))) {
		refuse(fmt.Sprintf("Passport-Signature %q is not the HMAC of the timestamp and the body", r.Header.Get("Passport-Signature")))
		return
	}
	var e notify.Event
	if err := json.Unmarshal(body, &e); err != nil {
		refuse("a body that is not an event: " + err.Error())
		return
	}
	if r.Header.Get("Passport-Event-Id") != e.ID || r.Header.Get("Passport-Event-Type") != e.Type {
		refuse(fmt.Sprintf("headers %v do not name event %s of type %s", r.Header, e.ID, e.Type))
		return
	}
	h.got = append(h.got, e)
	w.WriteHeader(http.StatusNoContent)
}

// events lists what was accepted, as "<request> <type> by <who>", sorted,
// and fails the test for every request refused.
func (h *webhook) events(t *testing.T) []string {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, why := range h.refused {
		t.Errorf("the webhook refused a request: %s", why)
	}
	h.refused = nil
	var out []string
	for _, e := range h.got {
		out = append(out, e.Request.ID+" "+e.Type+" by "+e.By)
	}
	slices.Sort(out)
	return out
}

// notifyConfigFor writes a notifications file naming srv as a signed
// webhook, and returns its path. A failed event may be retried a
// millisecond later: by the next run of reconcile --once.
func notifyConfigFor(t *testing.T, h *webhook, srv *httptest.Server) string {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "webhook.secret")
	if err := os.WriteFile(secret, h.secret, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "notify.json")
	cfg := fmt.Sprintf(`{"sinks": [{"name": "siem", "type": "webhook", "url": %q, "secret_file": %q}], "expiry_notice": "20m", "retry_min": "1ms"}`, srv.URL, secret)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// passport reconcile --notify-config announces what the reconciler does
// on a ledger that direct-mode tools wrote (which announce nothing
// themselves), and delivers it: after the pass with --once, as it goes
// in daemon mode.
func TestReconcileNotifies(t *testing.T) {
	node := startReconcileLab(t)

	t.Run("once", func(t *testing.T) {
		ledgerURL, l := expiredGrantLedger(t, node)
		activeGrant(t, l, node, "ar-00000000000000c2", "bob@example.com", "pp-clisoon", 15*time.Minute)
		h, srv := newWebhook(t)
		args := []string{"reconcile", "--once", "--sweep=false", "--policy", "none", "--ledger", ledgerURL, "--name", "reconciler/cron", "--notify-config", notifyConfigFor(t, h, srv)}
		// A receiver that is down fails neither the run nor the events:
		// the next run sends them.
		h.setDown(true)
		stdout, stderr, err := passportRun(t, args...)
		if err != nil || !strings.Contains(stdout, "due 1, revoked 1,") {
			t.Fatalf("reconcile --once --notify-config: %v\n%s\n%s", err, stdout, stderr)
		}
		h.mu.Lock()
		tries, got := h.tries, len(h.got)
		h.mu.Unlock()
		if tries == 0 || got != 0 {
			t.Fatalf("the webhook, down, was tried %d times and accepted %d events; want tried, nothing accepted", tries, got)
		}
		h.setDown(false)
		if stdout, stderr, err := passportRun(t, args...); err != nil || !strings.Contains(stdout, "due 0, revoked 0,") {
			t.Fatalf("reconcile --once with the webhook back: %v\n%s\n%s", err, stdout, stderr)
		}
		want := []string{"ar-00000000000000c1 ended by reconciler/cron", "ar-00000000000000c2 expiring-soon by reconciler/cron"}
		if got := h.events(t); !slices.Equal(got, want) {
			t.Fatalf("the webhook got %q, want %q", got, want)
		}

		// The next run has nothing new to say, and says nothing again.
		if stdout, stderr, err := passportRun(t, args...); err != nil || !strings.Contains(stdout, "due 0, revoked 0,") {
			t.Fatalf("second reconcile --once: %v\n%s\n%s", err, stdout, stderr)
		}
		if got := h.events(t); !slices.Equal(got, want) {
			t.Errorf("after a second run the webhook got %q, want still %q", got, want)
		}
	})

	t.Run("policy", func(t *testing.T) {
		ledgerURL, l := expiredGrantLedger(t, node)
		activeGrant(t, l, node, "ar-00000000000000c3", "carol@example.com", "pp-cliexpired", time.Hour)
		adminsOnly := filepath.Join(t.TempDir(), "policy.cedar")
		if err := os.WriteFile(adminsOnly, []byte(`permit (principal in Passport::Group::"admins", action == Passport::Action::"access", resource);`), 0o600); err != nil {
			t.Fatal(err)
		}
		h, srv := newWebhook(t)
		stdout, stderr, err := passportRun(t, "reconcile", "--once", "--sweep=false", "--policy", "file://"+adminsOnly, "--ledger", ledgerURL,
			"--name", "reconciler/cron", "--notify-config", notifyConfigFor(t, h, srv))
		if err != nil || !strings.Contains(stdout, "denied 1,") {
			t.Fatalf("reconcile --once under a tightened policy: %v\n%s\n%s", err, stdout, stderr)
		}
		want := []string{"ar-00000000000000c1 ended by reconciler/cron", "ar-00000000000000c3 revoked by reconciler/cron"}
		if got := h.events(t); !slices.Equal(got, want) {
			t.Fatalf("the webhook got %q, want %q", got, want)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		i := slices.IndexFunc(h.got, func(e notify.Event) bool { return e.Type == "revoked" })
		if revoked := h.got[i]; !revoked.Urgent || !strings.Contains(revoked.Detail, "policy no longer permits it") {
			t.Errorf("the revoked event is urgent %v with detail %q; want urgent, saying policy no longer permits it", revoked.Urgent, revoked.Detail)
		}
	})

	t.Run("daemon", func(t *testing.T) {
		ledgerURL, _ := expiredGrantLedger(t, node)
		h, srv := newWebhook(t)
		addr, stop := reconcileDaemon(t, "--interval", "200ms", "--sweep=false", "--policy", "none", "--listen", "127.0.0.1:0",
			"--ledger", ledgerURL, "--name", "reconciler/daemon", "--notify-config", notifyConfigFor(t, h, srv))
		want := []string{"ar-00000000000000c1 ended by reconciler/daemon"}
		testwait.Until(t, "the daemon's ended event at the webhook", func() bool { return len(h.events(t)) > 0 })
		delivered := `passport_notifications_delivered_total{sink="siem"} 1`
		testwait.Until(t, "/metrics counting the delivery", func() bool { return strings.Contains(get(t, "http://"+addr+"/metrics"), delivered) })

		if err := stop(); err != nil {
			t.Errorf("the daemon did not exit cleanly on SIGTERM: %v", err)
		}
		if got := h.events(t); !slices.Equal(got, want) {
			t.Errorf("the webhook got %q, want %q", got, want)
		}
	})
}

// A notifications file reconcile cannot use is refused with the flag and
// the file named, before the ledger is opened.
func TestReconcileRefusesABadNotifyConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify.json")
	if err := os.WriteFile(path, []byte(`{"sinks": [{"name": "siem", "type": "webhook", "url": "https://siem.example.com/hook"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "ledger.db")
	// Everything else is in order: a reconciler that read the file late
	// would have opened the ledger.
	t.Setenv("AWS_REGION", "us-east-1")
	_, stderr, err := passportRun(t, "reconcile", "--once", "--sweep=false", "--policy", "none", "--ledger", "sqlite://"+db, "--notify-config", path)
	want := "--notify-config " + path + `: sinks[0] (siem): give the secret with "secret_file" or "secret_env"`
	if err == nil || !strings.Contains(stderr, want) {
		t.Errorf("reconcile with a bad notifications file: %v %q; want an error saying %q", err, stderr, want)
	}
	if _, err := os.Stat(db); err == nil {
		t.Error("the ledger was opened before the notifications file was checked")
	}
}
