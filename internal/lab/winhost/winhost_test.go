package winhost

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

var (
	sealOnce sync.Once
	sealKey  *rsa.PrivateKey
)

// testSealKey is the requester's key the password is sealed to; one per
// test binary, because RSA key generation is slow.
func testSealKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	sealOnce.Do(func() {
		var err error
		if sealKey, err = rsa.GenerateKey(rand.Reader, 3072); err != nil {
			panic(err)
		}
	})
	return sealKey
}

// runScript runs a script as Run Command would deliver it.
func runScript(t *testing.T, h *Host, doc, source string) node.Result {
	t.Helper()
	res, err := h.Run(context.Background(), node.Script{Document: doc, Source: source, Timeout: time.Minute})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// runProgram runs a shipped program and parses its result line.
func runProgram(t *testing.T, h *Host, source string) (hostscript.Result, node.Result) {
	t.Helper()
	res := runScript(t, h, PowerShellDocument, source)
	r, err := hostscript.ParseResult(string(res.Stdout))
	if err != nil {
		t.Fatalf("ParseResult(%q): %v (stderr %q)", res.Stdout, err, res.Stderr)
	}
	if r.OK != (res.ExitCode == 0) || (!r.OK && r.Code != res.ExitCode) {
		t.Errorf("result line %q does not agree with exit code %d", res.Stdout, res.ExitCode)
	}
	return r, res
}

// provision provisions user for request and returns the opened password.
func provision(t *testing.T, h *Host, user, request string, expires time.Time, admin bool) string {
	t.Helper()
	key := testSealKey(t)
	script, err := hostscript.ProvisionWindows(hostscript.WindowsGrant{
		Username: user, RequestID: request, Requester: "alice@example.com",
		ExpiresAt: expires, Admin: admin, SealKey: &key.PublicKey,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, res := runProgram(t, h, script)
	if err := r.Err(); err != nil {
		t.Fatalf("provision %s: %v\nstderr: %s", user, err, res.Stderr)
	}
	if strings.Contains(string(res.Stdout)+string(res.Stderr), "password=\n") {
		t.Fatal("provision printed an empty password")
	}
	pw, err := hostscript.OpenPassword(key, r)
	if err != nil {
		t.Fatalf("OpenPassword: %v", err)
	}
	if strings.Contains(string(res.Stdout)+string(res.Stderr), pw) {
		t.Fatal("the clear password appears in the program's output")
	}
	return pw
}

func denied(t *testing.T, err error) string {
	t.Helper()
	var d *DeniedError
	if !errors.As(err, &d) {
		t.Fatalf("logon: got %v, want a DeniedError", err)
	}
	return d.Reason
}

func mustScript(t *testing.T) func(string, error) string {
	return func(s string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
}

// TestProvisionedPasswordLogsOnUntilItEnds walks one grant's life as a
// person sees it: the password works, a wrong one does not, extend moves
// the end, the end locks the account, revoke removes it.
func TestProvisionedPasswordLogsOnUntilItEnds(t *testing.T) {
	h, clk := newHost(t, Config{})
	ctx := context.Background()
	script := mustScript(t)
	pw := provision(t, h, "pp-ann", "ar-1", testStart.Add(time.Hour), false)

	a, ok := h.Account("pp-ann")
	if !ok || !a.Passport() || !a.InGroup(GroupRemoteDesktopUsers) || a.InGroup(GroupAdministrators) || !a.Expires.Equal(testStart.Add(time.Hour)) {
		t.Fatalf("account after provision: %+v, %v", a, ok)
	}
	if g, ok := h.Record("pp-ann"); !ok || g.Request != "ar-1" || g.Requester != "alice@example.com" || !g.Expires.Equal(testStart.Add(time.Hour)) {
		t.Fatalf("grant record after provision: %+v, %v", g, ok)
	}
	if err := Logon(ctx, h.RDPAddr(), "pp-ann", pw); err != nil {
		t.Fatalf("logon with the provisioned password: %v", err)
	}
	if err := Logon(ctx, h.RDPAddr(), "PP-ANN", pw); err != nil {
		t.Errorf("Windows user names are case-insensitive; logon as PP-ANN: %v", err)
	}
	if r := denied(t, Logon(ctx, h.RDPAddr(), "pp-ann", pw+"x")); r != ReasonWrongPassword {
		t.Errorf("wrong password: reason %q", r)
	}
	if err := Logon(ctx, h.RDPAddr(), "pp-ann", pw+"x"); strings.Contains(err.Error(), pw) {
		t.Errorf("the logon error shows the password: %v", err)
	}

	// Extend by an hour, then pass the old end: still in.
	r, _ := runProgram(t, h, script(hostscript.ExtendWindows("pp-ann", testStart.Add(2*time.Hour))))
	if !r.OK || r.Fields["expires"] != fmt.Sprint(testStart.Add(2*time.Hour).Unix()) {
		t.Fatalf("extend: %+v", r)
	}
	clk.Advance(90 * time.Minute)
	if err := Logon(ctx, h.RDPAddr(), "pp-ann", pw); err != nil {
		t.Fatalf("logon inside the extended window: %v", err)
	}
	clk.Advance(30 * time.Minute)
	if r := denied(t, Logon(ctx, h.RDPAddr(), "pp-ann", pw)); r != ReasonExpired {
		t.Errorf("logon at the window's end: reason %q, want %q", r, ReasonExpired)
	}

	r, _ = runProgram(t, h, script(hostscript.RevokeWindows("pp-ann")))
	if !r.OK || r.Fields["removed"] != "yes" {
		t.Fatalf("revoke: %+v", r)
	}
	if _, ok := h.Account("pp-ann"); ok {
		t.Fatal("the account is still there after revoke")
	}
	if r := denied(t, Logon(ctx, h.RDPAddr(), "pp-ann", pw)); r != ReasonUnknownUser {
		t.Errorf("logon after revoke: reason %q", r)
	}
	// Revoking again is fine: the host is already clean.
	r, _ = runProgram(t, h, script(hostscript.RevokeWindows("pp-ann")))
	if !r.OK || r.Fields["removed"] != "no" {
		t.Fatalf("second revoke: %+v", r)
	}
}

// TestProvisionPrintsWhatPowerShellPrints pins the result line's shape.
func TestProvisionPrintsWhatPowerShellPrints(t *testing.T) {
	h, _ := newHost(t, Config{})
	key := testSealKey(t)
	script := mustScript(t)(hostscript.ProvisionWindows(hostscript.WindowsGrant{
		Username: "pp-bob", RequestID: "ar-2", Requester: "bob", ExpiresAt: testStart.Add(time.Hour), Admin: true, SealKey: &key.PublicKey,
	}))
	res := runScript(t, h, PowerShellDocument, script)
	line := strings.TrimSuffix(string(res.Stdout), "\n")
	prefix := "passport-result action=provision status=ok user=pp-bob changed=user,groups,record password="
	if res.ExitCode != 0 || !strings.HasPrefix(line, prefix) || strings.Contains(line[len(prefix):], " ") || strings.Contains(line, "=") && strings.HasSuffix(line, "=") {
		t.Fatalf("result line %q (exit %d), want %q followed by unpadded base64url", line, res.ExitCode, prefix)
	}
	if a, _ := h.Account("pp-bob"); !a.InGroup(GroupAdministrators) {
		t.Errorf("admin=1 did not put pp-bob in Administrators: %+v", a)
	}
	// Provisioning the same request again converges and hands out a new
	// password: the old one stops working.
	first := provision(t, h, "pp-bob", "ar-2", testStart.Add(time.Hour), false)
	second := provision(t, h, "pp-bob", "ar-2", testStart.Add(time.Hour), false)
	if first == second {
		t.Fatal("two provisions handed out the same password")
	}
	if err := Logon(context.Background(), h.RDPAddr(), "pp-bob", first); err == nil {
		t.Error("the previous password still works after a new provision")
	}
	if a, _ := h.Account("pp-bob"); a.InGroup(GroupAdministrators) {
		t.Errorf("admin=0 left pp-bob in Administrators: %+v", a)
	}
}

// TestRefusesWhatIsNotAShippedProgram: a changed byte, a Linux program or
// the wrong document exits 2, prints no result and changes nothing.
func TestRefusesWhatIsNotAShippedProgram(t *testing.T) {
	h, _ := newHost(t, Config{})
	pw := provision(t, h, "pp-cat", "ar-3", testStart.Add(time.Hour), false)
	before := h.Users()
	key := testSealKey(t)
	good := mustScript(t)(hostscript.ProvisionWindows(hostscript.WindowsGrant{
		Username: "pp-dan", RequestID: "ar-4", Requester: "dan", ExpiresAt: testStart.Add(time.Hour), SealKey: &key.PublicKey,
	}))
	linux := mustScript(t)(hostscript.Revoke(hostscript.Revocation{Username: "pp-cat"}))
	i := strings.LastIndex(good, "Write")
	if i < 0 {
		i = len(good) / 2
	}
	changed := good[:i] + "w" + good[i+1:]

	for _, tc := range []struct {
		name, doc, source string
	}{
		{"one byte changed", PowerShellDocument, changed},
		{"trailing command", PowerShellDocument, good + "\nRemove-LocalUser pp-cat\n"},
		{"Linux program", PowerShellDocument, linux},
		{"Linux document", "AWS-RunShellScript", good},
		{"empty", PowerShellDocument, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runScript(t, h, tc.doc, tc.source)
			if res.ExitCode != hostscript.ExitData || !strings.Contains(string(res.Stderr), "runs") {
				t.Errorf("exit %d, stderr %q; want exit %d and why", res.ExitCode, res.Stderr, hostscript.ExitData)
			}
			if _, err := hostscript.ParseResult(string(res.Stdout)); !errors.Is(err, hostscript.ErrNoResult) {
				t.Errorf("a refused script printed a result: %q", res.Stdout)
			}
		})
	}
	if after := h.Users(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("users changed: before %+v, after %+v", before, after)
	}
	if err := Logon(context.Background(), h.RDPAddr(), "pp-cat", pw); err != nil {
		t.Errorf("pp-cat can no longer log on: %v", err)
	}
}

// TestLeavesOtherAccountsAlone: a local account Passport did not make is
// never changed, whatever a program asks.
func TestLeavesOtherAccountsAlone(t *testing.T) {
	h, _ := newHost(t, Config{})
	ctx := context.Background()
	script := mustScript(t)
	if err := h.AddLocalAccount("pp-eve", "Local-Admin-Pass1", GroupAdministrators); err != nil {
		t.Fatal(err)
	}
	key := testSealKey(t)
	for _, tc := range []struct {
		name   string
		source string
		code   int
	}{
		{"provision", script(hostscript.ProvisionWindows(hostscript.WindowsGrant{Username: "pp-eve", RequestID: "ar-5", Requester: "x", ExpiresAt: testStart.Add(time.Hour), SealKey: &key.PublicKey})), hostscript.ExitConflict},
		{"extend", script(hostscript.ExtendWindows("pp-eve", testStart.Add(time.Hour))), hostscript.ExitConflict},
		{"revoke", script(hostscript.RevokeWindows("pp-eve")), hostscript.ExitConflict},
		{"extend unknown", script(hostscript.ExtendWindows("pp-nobody", testStart.Add(time.Hour))), hostscript.ExitNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, res := runProgram(t, h, tc.source)
			var e *hostscript.Error
			if !errors.As(r.Err(), &e) || e.Code != tc.code || e.Step == "" {
				t.Fatalf("result %+v, want code %d with a step", r, tc.code)
			}
			if !strings.Contains(string(res.Stderr), "step "+e.Step+" failed") {
				t.Errorf("stderr %q does not name the failed step", res.Stderr)
			}
		})
	}
	a, ok := h.Account("pp-eve")
	if !ok || a.Passport() || !a.Expires.IsZero() || strings.Join(a.Groups, ",") != GroupAdministrators {
		t.Errorf("the other account changed: %+v", a)
	}
	if _, ok := h.Record("pp-eve"); ok {
		t.Error("a grant record appeared for the other account")
	}
	if err := Logon(ctx, h.RDPAddr(), "pp-eve", "Local-Admin-Pass1"); err != nil {
		t.Errorf("the other account's own password stopped working: %v", err)
	}
	if err := h.AddLocalAccount("guest-1", "Guest-Pass-1"); err != nil {
		t.Fatal(err)
	}
	if r := denied(t, Logon(ctx, h.RDPAddr(), "guest-1", "Guest-Pass-1")); r != ReasonNoRemoteDesktop {
		t.Errorf("an account outside Remote Desktop Users: reason %q", r)
	}
}

// TestCheckInventorySweep: the read-only programs and the sweep answer in
// the Linux programs' terms, so the same parsers read them.
func TestCheckInventorySweep(t *testing.T) {
	h, clk := newHost(t, Config{})
	script := mustScript(t)
	provision(t, h, "pp-fay", "ar-6", testStart.Add(time.Hour), false)
	provision(t, h, "pp-gus", "ar-7", testStart.Add(3*time.Hour), false)
	if err := h.AddLocalAccount("pp-hal", "Hal-Pass-0001"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		user, request string
		want          hostscript.Presence
	}{
		{"pp-fay", "ar-6", hostscript.Presence{User: "pp-fay", Account: hostscript.AccountPassport, Record: hostscript.RecordThis, ExpiresAt: time.Unix(testStart.Add(time.Hour).Unix(), 0)}},
		{"pp-fay", "ar-9", hostscript.Presence{User: "pp-fay", Account: hostscript.AccountPassport, Record: hostscript.RecordOther}},
		{"pp-hal", "ar-6", hostscript.Presence{User: "pp-hal", Account: hostscript.AccountOther, Record: hostscript.RecordAbsent}},
		{"pp-ivy", "ar-6", hostscript.Presence{User: "pp-ivy", Account: hostscript.AccountAbsent, Record: hostscript.RecordAbsent}},
	} {
		r, _ := runProgram(t, h, script(hostscript.CheckWindows(tc.user, tc.request)))
		got, err := hostscript.ParsePresence(r)
		if err != nil || got != tc.want {
			t.Errorf("check %s %s: %+v, %v; want %+v", tc.user, tc.request, got, err, tc.want)
		}
	}

	r, _ := runProgram(t, h, hostscript.InventoryWindows())
	if len(r.Inventory) != 2 || r.Inventory[0].Username != "pp-fay" || !r.Inventory[0].HasUser || !r.Inventory[0].HasRecord ||
		!r.Inventory[1].ExpiresAt.Equal(testStart.Add(3*time.Hour)) || r.Fields["count"] != "2" || r.Truncated {
		t.Errorf("inventory: %+v", r)
	}

	clk.Advance(2 * time.Hour)
	r, _ = runProgram(t, h, hostscript.SweepWindows())
	if !r.OK || strings.Join(r.Removed, ",") != "pp-fay" || r.Fields["kept"] != "1" {
		t.Fatalf("sweep: %+v", r)
	}
	if _, ok := h.Account("pp-fay"); ok {
		t.Error("the sweep left the expired user")
	}
	for _, name := range []string{"pp-gus", "pp-hal"} {
		if _, ok := h.Account(name); !ok {
			t.Errorf("the sweep removed %s", name)
		}
	}
}

// TestOffline: a stopped host runs nothing and takes no logons; started
// again, its users are still there.
func TestOffline(t *testing.T) {
	h, _ := newHost(t, Config{})
	ctx := context.Background()
	pw := provision(t, h, "pp-joe", "ar-8", testStart.Add(time.Hour), false)
	if err := h.Stop(); err != nil {
		t.Fatal(err)
	}
	if h.Online() {
		t.Error("Online after Stop")
	}
	if _, err := h.Run(ctx, node.Script{Document: PowerShellDocument, Source: hostscript.InventoryWindows()}); !errors.Is(err, node.ErrOffline) {
		t.Errorf("Run on a stopped host: %v, want node.ErrOffline", err)
	}
	if _, err := h.DialPort(ctx, RDPPort); !errors.Is(err, node.ErrOffline) {
		t.Errorf("DialPort on a stopped host: %v, want node.ErrOffline", err)
	}
	if err := Logon(ctx, h.RDPAddr(), "pp-joe", pw); err == nil {
		t.Error("a stopped host took a logon")
	}
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	if err := Logon(ctx, h.RDPAddr(), "pp-joe", pw); err != nil {
		t.Errorf("after Start: %v", err)
	}
	if _, err := h.DialPort(ctx, 22); err == nil {
		t.Error("DialPort to port 22 of a Windows host succeeded")
	}
}

// TestPasswordIsNotKept: the model holds a salted hash, never the password.
func TestPasswordIsNotKept(t *testing.T) {
	h, _ := newHost(t, Config{})
	pw := provision(t, h, "pp-kim", "ar-9", testStart.Add(time.Hour), false)
	h.mu.Lock()
	a := *h.accounts["pp-kim"]
	h.mu.Unlock()
	if dump := fmt.Sprintf("%#v", a); strings.Contains(dump, pw) || len(a.salt) < 16 {
		t.Errorf("the account keeps the password or no salt: %s", dump)
	}
	if !a.passwordIs(pw) || a.passwordIs(strings.ToUpper(pw)) {
		t.Error("the stored hash does not check the password")
	}
}

// TestRefusesAProgramNotKnownToParse: a shipped program whose action is
// not in the record of programs a PowerShell grammar parsed is refused
// before it changes anything, as Windows would refuse a script that does
// not parse; the actions still in the record run.
func TestRefusesAProgramNotKnownToParse(t *testing.T) {
	record := hostscript.WindowsGrammarRecord()
	var stale []string
	for _, line := range strings.Split(strings.TrimSpace(record), "\n") {
		if !strings.HasSuffix(line, "  provision") {
			stale = append(stale, line)
		}
	}
	h, _ := newHost(t, Config{GrammarSum: strings.Join(stale, "\n")})
	key := testSealKey(t)
	script := mustScript(t)(hostscript.ProvisionWindows(hostscript.WindowsGrant{
		Username: "pp-eve", RequestID: "ar-5", Requester: "eve", ExpiresAt: testStart.Add(time.Hour), SealKey: &key.PublicKey,
	}))
	res := runScript(t, h, PowerShellDocument, script)
	if res.ExitCode != hostscript.ExitData || !strings.Contains(string(res.Stderr), "not known to parse as PowerShell") {
		t.Fatalf("exit %d, stderr %q; want the provision program refused as not known to parse", res.ExitCode, res.Stderr)
	}
	if len(h.Users()) != 0 {
		t.Errorf("users were made: %+v", h.Users())
	}
	if r, _ := runProgram(t, h, hostscript.InventoryWindows()); !r.OK {
		t.Errorf("inventory, still in the record, did not run: %+v", r)
	}
}
