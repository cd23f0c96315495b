package provider

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-log/tflogtest"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"golang.org/x/crypto/ssh"

	"github.com/passport-access/terraform-provider-passport/internal/api"
	"github.com/passport-access/terraform-provider-passport/internal/client"
	"github.com/passport-access/terraform-provider-passport/internal/lab"
	"github.com/passport-access/terraform-provider-passport/internal/lab/idp"
	"github.com/passport-access/terraform-provider-passport/internal/lab/labtest"
	"github.com/passport-access/terraform-provider-passport/internal/ledger"
)

var serviceBob = accMode{name: "service_as_bob", person: "bob"}

// TestAccCreateWaitsForApproval: bob (dev) asks for 3 hours on staging,
// which the lab's policy grants once an operator approves. The create
// waits for it, saying so in Terraform's log; when its timeout passes
// first, the error names the request and what to do, and the next apply
// picks the same request up (its key, made by the first apply, kept
// meanwhile) and is granted once alice approves.
func TestAccCreateWaitsForApproval(t *testing.T) {
	l := startAccLabIn(t, lab.Options{Hosts: 2}, serviceBob)
	staging := l.Hosts[0].Info().InstanceID
	conn, err := newServiceConn(l.server, client.SignIn{Options: client.Options{CAFile: l.serverCA}, Now: l.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	s := serviceGrantor{conn: conn}
	want := ask{reason: "CHG-81 migrate the sessions table", targets: []string{staging}, duration: 3 * time.Hour}

	var log bytes.Buffer
	ctx, cancel := context.WithTimeout(tflogtest.RootLogger(context.Background(), &log), 3*time.Second)
	g, waited := s.grant(ctx, want)
	cancel()
	if g != nil || waited == nil {
		t.Fatalf("a create whose timeout passed while it waited: %v, %v", g, waited)
	}
	book, err := ledger.Open(context.Background(), os.Getenv("PASSPORT_LEDGER"), ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer book.Close()
	waiting, err := book.List(context.Background(), ledger.Pending)
	if err != nil || len(waiting) != 1 {
		t.Fatalf("pending requests: %d, %v", len(waiting), err)
	}
	id := waiting[0].ID
	for _, w := range []string{"access request " + id + " still waits for 1 more approval from group:admins or group:ops", "passport approve " + id, "terraform apply again: it picks this request up"} {
		if !strings.Contains(waited.Error(), w) {
			t.Errorf("the error does not say %q:\n%v", w, waited)
		}
	}
	if !strings.Contains(log.String(), "Passport: access request waits for approval: 1 more approval from group:admins or group:ops") || !strings.Contains(log.String(), id) {
		t.Errorf("Terraform's log says:\n%s", log.String())
	}
	if users := passportUsers(t, l.Hosts[0]); len(users) != 0 {
		t.Errorf("a request that waits touched %s: %v", staging, users)
	}

	// alice approves it once the next apply says in Terraform's log that
	// it waits, so the approval comes to a create that waits.
	approved := make(chan error, 1)
	alice := personClient(t, l, "alice")
	waits := &logSignal{want: "access request waits for approval", seen: make(chan struct{})}
	go func() {
		select {
		case <-waits.seen:
			_, err := alice.Approve(context.Background(), id, "CHG-81 is on the board")
			approved <- err
		case <-time.After(3 * time.Minute):
			approved <- fmt.Errorf("the second apply never said in its log that it waits for approval")
		}
	}()
	ctx, cancel = context.WithTimeout(tflogtest.RootLogger(context.Background(), waits), 3*time.Minute)
	defer cancel()
	g, err = s.grant(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-approved; err != nil {
		t.Fatal(err)
	}
	if g.ID != id || g.ExpiresAt.Sub(g.IssuedAt) != 3*time.Hour || g.PrivateKey == "" {
		t.Fatalf("the second apply: request %s (want %s), window %s, private key kept %v", g.ID, id, g.ExpiresAt.Sub(g.IssuedAt), g.PrivateKey != "")
	}
	if all, _ := book.List(context.Background(), ledger.Active); len(all) != 1 {
		t.Errorf("%d active requests; the second apply must not ask again", len(all))
	}
	key, err := ssh.ParsePrivateKey([]byte(g.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	labtest.MustLogIn(t, l.Hosts[0], g.Username, labtest.CertSigner(t, key, g.Certificate))
	if _, err := client.LoadPending(id); err == nil {
		t.Error("the keys kept while the request waited are still on disk after it was granted")
	}

	// A longer window waits too, while the current one stands.
	short, cancelShort := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = s.extend(short, g, "", 4*time.Hour)
	cancelShort()
	if err == nil || !strings.Contains(err.Error(), "still waits for 1 more approval") || !strings.Contains(err.Error(), "stands") {
		t.Fatalf("a longer window past the update timeout: %v", err)
	}
	if _, err := alice.Approve(context.Background(), id, ""); err != nil {
		t.Fatal(err)
	}
	longer, err := s.extend(context.Background(), g, "", 4*time.Hour)
	if err != nil || !longer.ExpiresAt.Equal(g.IssuedAt.Add(4*time.Hour)) {
		t.Fatalf("the approved longer window: %v, %v", longer, err)
	}
	if err := s.revoke(context.Background(), longer); err != nil {
		t.Fatal(err)
	}

	t.Run("terraform apply", func(t *testing.T) { applyWaitsForApproval(t, l, book, alice) })
	t.Run("break glass", func(t *testing.T) { applyBreaksTheGlass(t, l, book) })
}

// applyBreaksTheGlass: dave (oncall), signed in on this machine now,
// breaks the glass on production with break_glass = true: granted at
// once, recorded as break-glass owing a review.
func applyBreaksTheGlass(t *testing.T, l *accLab, book *ledger.Ledger) {
	keepSignIn(t, l, "dave")
	production := l.Hosts[1]
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{{
			Config: l.config(fmt.Sprintf(`
resource "passport_access_request" "glass" {
  targets     = [%q]
  reason      = "INC-90 primary database down"
  break_glass = true
  timeouts {
    create = "1m"
  }
}
`, production.Info().InstanceID)),
			Check: resource.ComposeAggregateTestCheckFunc(
				resource.TestCheckResourceAttr("passport_access_request.glass", "active", "true"),
				resource.TestCheckResourceAttr("passport_access_request.glass", "requester", "dave"),
				logsIn("passport_access_request.glass", production),
				func(s *terraform.State) error {
					a, err := attributes(s, "passport_access_request.glass")
					if err != nil {
						return err
					}
					g, err := book.Get(context.Background(), a["id"])
					if err != nil || !g.BreakGlass || g.Review == nil || g.Review.Due.IsZero() {
						return fmt.Errorf("request %s is not recorded as break-glass owing a review: %+v, %v", a["id"], g, err)
					}
					return nil
				},
			),
		}},
	})
}

// applyWaitsForApproval: the same through the terraform CLI. The first
// apply's create timeout passes while the request waits, and the error
// says so and what to do; a second apply waits for the same request
// instead of opening another; once alice approves, the third picks the
// granted request up, with the key pair the first apply made.
func applyWaitsForApproval(t *testing.T, l *accLab, book *ledger.Ledger, alice *client.Client) {
	const reason = "CHG-84 reindex the sessions table"
	cfg := l.config(fmt.Sprintf(`
resource "passport_access_request" "r" {
  targets  = [%q]
  reason   = %q
  duration = "3h"
  timeouts {
    create = "5s"
  }
}
`, l.Hosts[0].Info().InstanceID, reason))
	// waiting lists the requests of this configuration that wait.
	waiting := func(t *testing.T) []ledger.Grant {
		t.Helper()
		all, err := book.List(context.Background(), ledger.Pending)
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(all, func(g ledger.Grant) bool { return g.Reason != reason })
	}
	var id string
	timedOut := regexp.MustCompile(`(?s)` + words("Access request waits for approval") + `.*` + words("access request ar-") + `[0-9a-f]+\s+` +
		words("still waits for 1 more approval from group:admins or group:ops") + `.*` + words("An approver runs: passport approve ar-") +
		`.*` + words("Then run terraform apply again: it picks this request up (it does not ask again)"))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: l.factories(),
		Steps: []resource.TestStep{
			{Config: cfg, ExpectError: timedOut},
			{
				PreConfig: func() {
					w := waiting(t)
					if len(w) != 1 {
						t.Fatalf("%d requests wait after the first apply, want 1", len(w))
					}
					id = w[0].ID
					if users := passportUsers(t, l.Hosts[0]); len(users) != 0 {
						t.Fatalf("a request that waits touched the host: %v", users)
					}
				},
				Config:      cfg,
				ExpectError: timedOut,
			},
			{
				PreConfig: func() {
					if w := waiting(t); len(w) != 1 || w[0].ID != id {
						t.Fatalf("after the second apply %d requests wait, want %s alone: the second apply asked again", len(w), id)
					}
					if _, err := alice.Approve(context.Background(), id, "CHG-84 is on the board"); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttrWith("passport_access_request.r", "id", func(got string) error {
						if got != id {
							return fmt.Errorf("the third apply holds request %s, want %s, which alice approved", got, id)
						}
						return nil
					}),
					resource.TestCheckResourceAttr("passport_access_request.r", "active", "true"),
					logsIn("passport_access_request.r", l.Hosts[0]),
					func(*terraform.State) error {
						if _, err := client.LoadPending(id); err == nil {
							return fmt.Errorf("the keys kept for %s are still on disk after the apply that collected it", id)
						}
						return nil
					},
				),
			},
		},
	})
}

// words matches text as Terraform prints it, wrapped at any space.
func words(text string) string {
	f := strings.Fields(text)
	for i := range f {
		f[i] = regexp.QuoteMeta(f[i])
	}
	return strings.Join(f, `\s+`)
}

// keepSignIn signs person in to the accLab's service and keeps the token
// where the provider reads it, as passport login --server does.
func keepSignIn(t *testing.T, l *accLab, person string) {
	t.Helper()
	_, tok := signInTo(t, l, person)
	if err := client.SaveToken(l.server, tok); err != nil {
		t.Fatal(err)
	}
}

// personClient signs person in to the accLab's service.
func personClient(t *testing.T, l *accLab, person string) *client.Client {
	t.Helper()
	c, _ := signInTo(t, l, person)
	return c
}

func signInTo(t *testing.T, l *accLab, person string) (*client.Client, api.Token) {
	t.Helper()
	hc := trusting(t, l.serverCA)
	code, verifier, err := idp.ServiceLoginCode(context.Background(), hc.Transport, l.server, person, person+"-lab")
	if err != nil {
		t.Fatalf("signing %s in: %v", person, err)
	}
	anon, err := client.New(l.server, client.Options{HTTP: hc})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := anon.ExchangeCode(context.Background(), code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	return anon.WithToken(tok.Token), tok
}

// A wait for approval that ends early says why: the timeout, or Terraform
// interrupted (Ctrl-C), which is no timeout to lengthen.
func TestStoppedWaitingSaysWhy(t *testing.T) {
	interrupted, cancel := context.WithCancel(context.Background())
	cancel()
	if got := stoppedWaiting(interrupted, "create"); got != "Terraform stopped waiting (interrupted)" {
		t.Errorf("interrupted: %q", got)
	}
	timedOut, cancel := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel()
	if got := stoppedWaiting(timedOut, "update"); got != "the update timeout passed" {
		t.Errorf("timed out: %q", got)
	}
}

// Changing break_glass replaces a request, but a state written before the
// attribute existed (null) does not, when the configuration leaves it
// false: upgrading the provider replaces nothing.
func TestBreakGlassReplaces(t *testing.T) {
	for _, tc := range []struct {
		name        string
		state, plan types.Bool
		want        bool
	}{
		{"an older state, left out", types.BoolNull(), types.BoolValue(false), false},
		{"an older state, now true", types.BoolNull(), types.BoolValue(true), true},
		{"turned on", types.BoolValue(false), types.BoolValue(true), true},
		{"turned off", types.BoolValue(true), types.BoolValue(false), true},
		{"unchanged", types.BoolValue(false), types.BoolValue(false), false},
	} {
		state := tfsdk.State{Raw: tftypes.NewValue(tftypes.Object{}, map[string]tftypes.Value{})}
		plan := tfsdk.Plan{Raw: tftypes.NewValue(tftypes.Object{}, map[string]tftypes.Value{})}
		req := planmodifier.BoolRequest{Path: path.Root("break_glass"), State: state, Plan: plan, StateValue: tc.state, PlanValue: tc.plan, ConfigValue: tc.plan}
		var resp planmodifier.BoolResponse
		resp.PlanValue = tc.plan
		breakGlassReplaces.PlanModifyBool(context.Background(), req, &resp)
		if resp.RequiresReplace != tc.want {
			t.Errorf("%s: replaces %v, want %v", tc.name, resp.RequiresReplace, tc.want)
		}
	}
}

// logSignal is a log's writer that closes seen the first time a line
// with want is written.
type logSignal struct {
	want string
	seen chan struct{}
	once sync.Once
}

func (l *logSignal) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(l.want)) {
		l.once.Do(func() { close(l.seen) })
	}
	return len(p), nil
}
