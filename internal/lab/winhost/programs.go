package winhost

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
	"github.com/passport-access/terraform-provider-passport/internal/winpass"
)

// PowerShellDocument is AWS's document for PowerShell scripts. A Windows
// host runs its aws:runPowerShellScript step, and the same step of
// Passport's own documents.
const PowerShellDocument = "AWS-RunPowerShellScript"

const powerShellPlugin = "aws:runPowerShellScript"

// The patterns the shipped programs check every field against again on the
// host, which must not trust what arrives over the network.
var (
	reUser      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,19}$`)
	reRequest   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	reRequester = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$`)
	reEpoch     = regexp.MustCompile(`^[1-9][0-9]{0,10}$`)
	reFlag      = regexp.MustCompile(`^[01]$`)
	reBase64URL = regexp.MustCompile(`^[A-Za-z0-9_-]+={0,2}$`)
)

// shippedText undoes the agent's own last newline: the agent ends a script
// file with a newline after its last line, so a program sent whole (one
// line of AWS-RunPowerShellScript's "commands", ending in a newline of its
// own) arrives with two, and the same program published as a document
// (lines without their newlines) arrives with one.
func shippedText(source string) string {
	if strings.HasSuffix(source, "\n\n") {
		return source[:len(source)-1]
	}
	return source
}

// Run implements node.Node. It runs a script only when it is exactly one of
// Passport's shipped Windows programs, by applying that program's data to
// the host's model; anything else exits 2 and changes nothing.
func (h *Host) Run(ctx context.Context, s node.Script) (node.Result, error) {
	if !h.Online() {
		return node.Result{}, node.ErrOffline
	}
	if err := ctx.Err(); err != nil {
		return node.Result{}, err
	}
	if s.PluginName() != powerShellPlugin {
		return refused(fmt.Sprintf("%s runs %s steps only, and document %q has none", h, powerShellPlugin, clip(s.Document))), nil
	}
	action, fields, err := hostscript.ReadWindowsProgram(shippedText(s.Source))
	if err != nil {
		return refused(fmt.Sprintf("%s runs only Passport's shipped Windows programs, and this script is not one of them (%s); nothing was changed", h, clip(err.Error()))), nil
	}
	// The lab cannot run PowerShell; what it can check is that this
	// program is one a real PowerShell grammar parsed (hostscript's
	// TestWindowsGrammar, recorded in its grammar.sum). A program that
	// does not parse would fail on Windows before doing anything.
	sum := h.cfg.GrammarSum
	if sum == "" {
		sum = hostscript.WindowsGrammarSum
	}
	if err := hostscript.VerifyWindowsGrammar(sum, action); err != nil {
		return refused(fmt.Sprintf("%s refuses the %s program: it is not known to parse as PowerShell (%s); nothing was changed", h, action, clip(err.Error()))), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p := &program{action: action, fields: fields}
	var kv []string
	var f *failure
	changes := action == "provision" || action == "extend" || action == "revoke"
	switch {
	case changes && h.cfg.DomainController:
		// The programs check the host's role before anything else.
		f = fail(hostscript.ExitHost, "host", "domain controller: no local users; Passport grants Windows access on member servers and workstations only")
	case action == "provision":
		kv, f = h.provision(p)
	case action == "extend":
		kv, f = h.extend(p)
	case action == "revoke":
		kv, f = h.revoke(p)
	case action == "check":
		kv, f = h.check(p)
	case action == "inventory":
		kv, f = h.inventory(p)
	case action == "sweep":
		kv, f = h.sweep(p)
	case action == "collect":
		kv, f = h.collect(p)
	default:
		f = fail(hostscript.ExitData, "data", "unknown action %q", clip(action))
	}
	return p.finish(kv, f), nil
}

// refused is the answer to a script that is not a shipped program: no
// result line, because no Passport program ran.
func refused(why string) node.Result {
	return node.Result{ExitCode: hostscript.ExitData, Stderr: []byte("passport lab: " + why + "\n")}
}

// program is one run of a shipped program: its decoded data and what it
// printed.
type program struct {
	action string
	fields map[string]string
	stderr strings.Builder
	// stdout is what collect prints before its result line, which it
	// prints on stderr.
	stdout string
}

// failure is a failed step, as the programs' die reports it.
type failure struct {
	code int
	step string
	msg  string
}

func fail(code int, step, format string, a ...any) *failure {
	return &failure{code: code, step: step, msg: fmt.Sprintf(format, a...)}
}

func (p *program) warn(format string, a ...any) {
	fmt.Fprintf(&p.stderr, "passport %s: %s\n", p.action, fmt.Sprintf(format, a...))
}

// finish prints the result line exactly as the PowerShell's Write-Result
// does, and on failure the step's message on stderr.
func (p *program) finish(kv []string, f *failure) node.Result {
	line := "passport-result action=" + p.action
	code := 0
	if f != nil {
		fmt.Fprintf(&p.stderr, "passport %s: step %s failed: %s\n", p.action, f.step, f.msg)
		line += " status=error code=" + strconv.Itoa(f.code) + " step=" + f.step
		code = f.code
	} else {
		line += " status=ok"
		for _, s := range kv {
			line += " " + s
		}
	}
	if p.action == "collect" {
		return node.Result{ExitCode: code, Stdout: []byte(p.stdout), Stderr: []byte(p.stderr.String() + line + "\n")}
	}
	return node.Result{ExitCode: code, Stdout: []byte(line + "\n"), Stderr: []byte(p.stderr.String())}
}

// field returns a data field that must match re; a missing or invalid one
// fails the program before it changes anything.
func (p *program) field(name string, re *regexp.Regexp) (string, *failure) {
	v, ok := p.fields[name]
	if !ok || !re.MatchString(v) {
		return "", fail(hostscript.ExitData, "data", "field %s is missing or not valid", name)
	}
	return v, nil
}

func (p *program) epoch(name string) (time.Time, *failure) {
	v, f := p.field(name, reEpoch)
	if f != nil {
		return time.Time{}, f
	}
	sec, _ := strconv.ParseInt(v, 10, 64)
	return time.Unix(sec, 0), nil
}

// sealKey reads the RSA key the password is sealed to: seal_n and seal_e,
// base64url big-endian, as the PowerShell hands them to RSAParameters.
func (p *program) sealKey() (*rsa.PublicKey, *failure) {
	nb, f := p.base64URL("seal_n")
	if f != nil {
		return nil, f
	}
	eb, f := p.base64URL("seal_e")
	if f != nil {
		return nil, f
	}
	n := new(big.Int).SetBytes(nb)
	e := new(big.Int).SetBytes(eb)
	if n.BitLen() < 2048 || n.BitLen() > 8192 || n.Bit(0) == 0 {
		return nil, fail(hostscript.ExitData, "data", "field seal_n is not a 2048- to 8192-bit RSA modulus")
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, fail(hostscript.ExitData, "data", "field seal_e is not a usable RSA exponent")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func (p *program) base64URL(name string) ([]byte, *failure) {
	v, f := p.field(name, reBase64URL)
	if f != nil {
		return nil, f
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "="))
	if err != nil || len(b) == 0 || len(b) > 1024 {
		return nil, fail(hostscript.ExitData, "data", "field %s is not base64url", name)
	}
	return b, nil
}

// provision creates (or converges) a Passport user with a new password,
// which only the requester's seal key can read.
func (h *Host) provision(p *program) ([]string, *failure) {
	user, f := p.field("user", reUser)
	if f != nil {
		return nil, f
	}
	request, f := p.field("request", reRequest)
	if f != nil {
		return nil, f
	}
	requester, f := p.field("requester", reRequester)
	if f != nil {
		return nil, f
	}
	expires, f := p.epoch("expires")
	if f != nil {
		return nil, f
	}
	admin, f := p.field("admin", reFlag)
	if f != nil {
		return nil, f
	}
	seal, f := p.sealKey()
	if f != nil {
		return nil, f
	}

	a, exists := h.accounts[key(user)]
	if exists && !a.Passport() {
		return nil, fail(hostscript.ExitConflict, "user-check", "user %s already exists and is not a Passport user", user)
	}
	if rec, ok := h.records[key(user)]; ok && rec.Request != request {
		return nil, fail(hostscript.ExitConflict, "user-check", "user %s belongs to another Passport request", user)
	}

	// The password is made and sealed before anything changes, so a
	// failure here leaves the host as it was.
	password, err := winpass.Generate()
	if err != nil {
		return nil, fail(hostscript.ExitFailed, "password", "cannot generate a password: %v", err)
	}
	if err := winpass.Check(password, user); err != nil {
		return nil, fail(hostscript.ExitFailed, "password", "the generated password does not meet the password policy: %v", err)
	}
	if len(password) < h.cfg.MinPasswordLength {
		return nil, fail(hostscript.ExitPassword, "password", "the host password policy refused the generated password (%d characters, all four classes); check Minimum password length and custom password filters", len(password))
	}
	sealed, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, seal, []byte(password), nil)
	if err != nil {
		return nil, fail(hostscript.ExitFailed, "seal", "cannot seal the password to the requester's key: %v", err)
	}

	var changed []string
	if !exists {
		a = &account{Account: Account{Name: user}}
		h.accounts[key(user)] = a
	}
	// A new password every time: the result line is the only way it
	// leaves the host, so a retried provision must hand out a fresh one.
	a.setPassword(password)
	a.Expires = expires
	changed = append(changed, "user")
	groups := false
	for _, g := range []string{GroupPassportUsers, GroupRemoteDesktopUsers} {
		groups = a.addGroup(g) || groups
	}
	if admin == "1" {
		groups = a.addGroup(GroupAdministrators) || groups
	} else {
		groups = a.removeGroup(GroupAdministrators) || groups
	}
	if groups {
		changed = append(changed, "groups")
	}
	rec := Grant{Request: request, Requester: requester, Expires: expires}
	if old, ok := h.records[key(user)]; !ok || old.Request != rec.Request || old.Requester != rec.Requester || !old.Expires.Equal(rec.Expires) {
		h.records[key(user)] = rec
		changed = append(changed, "record")
	}
	return []string{"user=" + user, "changed=" + strings.Join(changed, ","),
		"password=" + base64.RawURLEncoding.EncodeToString(sealed)}, nil
}

// extend moves a Passport user's expiry, in its account and its record.
func (h *Host) extend(p *program) ([]string, *failure) {
	user, f := p.field("user", reUser)
	if f != nil {
		return nil, f
	}
	expires, f := p.epoch("expires")
	if f != nil {
		return nil, f
	}
	a, ok := h.accounts[key(user)]
	switch {
	case !ok:
		return nil, fail(hostscript.ExitNotFound, "user-check", "there is no Passport user %s on this host; provision it again", user)
	case !a.Passport():
		return nil, fail(hostscript.ExitConflict, "user-check", "user %s exists but is not a Passport user", user)
	}
	rec, ok := h.records[key(user)]
	if !ok {
		return nil, fail(hostscript.ExitNotFound, "user-check", "user %s has no grant record on this host; provision it again", user)
	}
	var changed []string
	if !a.Expires.Equal(expires) {
		a.Expires = expires
		changed = append(changed, "user")
	}
	if !rec.Expires.Equal(expires) {
		rec.Expires = expires
		h.records[key(user)] = rec
		changed = append(changed, "record")
	}
	return []string{"user=" + user, "expires=" + strconv.FormatInt(expires.Unix(), 10), "changed=" + orNone(strings.Join(changed, ","))}, nil
}

// revoke removes a Passport user and its record; a host without them is
// already revoked.
func (h *Host) revoke(p *program) ([]string, *failure) {
	user, f := p.field("user", reUser)
	if f != nil {
		return nil, f
	}
	a, ok := h.accounts[key(user)]
	if ok && !a.Passport() {
		return nil, fail(hostscript.ExitConflict, "remove-user", "user %s exists but is not a Passport user; nothing was removed", user)
	}
	_, hasRecord := h.records[key(user)]
	present := "no"
	if ok || hasRecord {
		present = "yes"
	}
	h.logOff(user)
	delete(h.accounts, key(user))
	delete(h.records, key(user))
	return []string{"user=" + user, "removed=" + present}, nil
}

// check reports, changing nothing, whether a user and its grant record are
// here, in check.sh's terms.
func (h *Host) check(p *program) ([]string, *failure) {
	user, f := p.field("user", reUser)
	if f != nil {
		return nil, f
	}
	request, f := p.field("request", reRequest)
	if f != nil {
		return nil, f
	}
	account := "absent"
	if a, ok := h.accounts[key(user)]; ok {
		account = "other"
		if a.Passport() {
			account = "passport"
		}
	}
	record, expires := "absent", int64(0)
	if rec, ok := h.records[key(user)]; ok {
		record = "other"
		if rec.Request == request {
			record, expires = "this", rec.Expires.Unix()
		}
	}
	return []string{"user=" + user, "account=" + account, "record=" + record, "expires=" + strconv.FormatInt(expires, 10)}, nil
}

// inventoryLimit keeps the accounts value short, as inventory.sh does: Run
// Command truncates output.
const inventoryLimit = 2000

// inventory lists Passport users and grant records as inventory.sh does:
// name:expiry:state, state live, norecord or nouser.
func (h *Host) inventory(p *program) ([]string, *failure) {
	names := map[string]bool{}
	for k, a := range h.accounts {
		if a.Passport() {
			names[k] = true
		}
	}
	for k := range h.records {
		names[k] = true
	}
	sorted := slices.Sorted(maps.Keys(names))
	var accounts string
	count, truncated := 0, "no"
	for _, name := range sorted {
		if !reUser.MatchString(name) {
			p.warn("skipping %s member or grant record with a name Passport never creates", GroupPassportUsers)
			continue
		}
		expires := "none"
		rec, hasRecord := h.records[name]
		if hasRecord {
			expires = strconv.FormatInt(rec.Expires.Unix(), 10)
		}
		state := "nouser"
		if a, ok := h.accounts[name]; ok && a.Passport() {
			state = "live"
			if !hasRecord {
				state = "norecord"
			}
		}
		count++
		if len(accounts) < inventoryLimit {
			if accounts != "" {
				accounts += ","
			}
			accounts += name + ":" + expires + ":" + state
		} else {
			truncated = "yes"
		}
	}
	return []string{"count=" + strconv.Itoa(count), "accounts=" + orNone(accounts), "truncated=" + truncated}, nil
}

// sweep removes every Passport user whose grant record has expired by the
// host's clock.
func (h *Host) sweep(p *program) ([]string, *failure) {
	now := h.now()
	var removed []string
	kept, failed := 0, 0
	for _, name := range slices.Sorted(maps.Keys(h.records)) {
		rec := h.records[name]
		if rec.Expires.After(now) {
			kept++
			continue
		}
		if a, ok := h.accounts[name]; ok && !a.Passport() {
			p.warn("user %s has a grant record but is not a Passport user; left alone", name)
			failed++
			continue
		}
		h.logOff(name)
		delete(h.accounts, name)
		delete(h.records, name)
		removed = append(removed, name)
	}
	names := strings.Join(removed[:min(len(removed), 40)], ",")
	if failed > 0 {
		return nil, fail(hostscript.ExitFailed, "sweep", "%d grant(s) could not be swept (removed: %s)", failed, orNone(names))
	}
	return []string{"removed=" + strconv.Itoa(len(removed)), "users=" + orNone(names), "kept=" + strconv.Itoa(kept), "failed=0"}, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// clip keeps text from a script or a caller short enough for one stderr
// line.
func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
