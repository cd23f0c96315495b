// Windows programs (AWS-RunPowerShellScript, Windows PowerShell 5.1).
//
// They follow the Linux design: static PowerShell embedded here, request
// data validated in Go and carried as one base64 line,
//
//	$PassportData = '<base64 of "format=1\nkey=value\n...">'
//
// which the program decodes and validates again. Data fields:
//
//	action     provision, extend, revoke, check or collect
//	user       the local user, [a-z][a-z0-9-]{0,19}
//	request    the access request id (provision, check)
//	requester  who asked (provision)
//	expires    unix seconds; AccountExpires and the record (provision, extend)
//	admin      0 or 1: Administrators as well as Remote Desktop Users (provision)
//	seal_n     base64url RSA modulus, 3072-8192 bits (provision)
//	seal_e     base64url RSA exponent, always AQAB (65537) (provision)
//	since      unix seconds: the oldest event to hand over (collect)
//
// On a host, Passport's state is the local group "Passport Users" (created
// by provision with a description saying Passport manages it, and marked by
// the registry value HKLM:\SOFTWARE\Passport GroupCreated=1; a group of that
// name without the mark makes provision refuse), one registry key per grant,
// HKLM:\SOFTWARE\Passport\Grants\<user> with values request, requester and
// expires, and the sweep at C:\ProgramData\Passport\sweep.ps1, which the
// scheduled task "Passport Sweep" runs every minute as SYSTEM.
//
// Passwords are generated on the host from winpass.Alphabet and come back
// only RSA-OAEP(SHA-256)-encrypted to the grant's SealKey; OpenPassword
// decrypts them.
package hostscript

import (
	"crypto/rsa"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"github.com/passport-access/terraform-provider-passport/internal/winpass"
)

var (
	//go:embed programs/windows/lib.ps1
	winLibSource string
	//go:embed programs/windows/main.ps1
	winMainSource string
	//go:embed programs/windows/provision.ps1
	winProvisionSource string
	//go:embed programs/windows/extend.ps1
	winExtendSource string
	//go:embed programs/windows/revoke.ps1
	winRevokeSource string
	//go:embed programs/windows/check.ps1
	winCheckSource string
	//go:embed programs/windows/inventory.ps1
	winInventorySource string
	//go:embed programs/windows/sweep.ps1
	winSweepSource string
	//go:embed programs/windows/collect.ps1
	winCollectSource string
)

// Windows-only field rules; the PowerShell holds the same inner patterns.
var (
	reEpoch    = regexp.MustCompile(`^(?:[1-9][0-9]{0,10})$`)
	reBool     = regexp.MustCompile(`^(?:0|1)$`)
	reSealN    = regexp.MustCompile(`^(?:[A-Za-z0-9_-]+)$`)
	reSealE    = regexp.MustCompile(`^(?:AQAB)$`)
	reWinB64   = regexp.MustCompile(`^(?:[A-Za-z0-9+/]*={0,2})$`)
	winDataMax = 8192
)

// WindowsGrant is what the Windows provision program needs.
type WindowsGrant struct {
	Username  string         // same rule as Linux usernames (Windows local names are <= 20 chars)
	RequestID string         // recorded on the host
	Requester string         // recorded on the host
	ExpiresAt time.Time      // AccountExpires and the record's expiry
	Admin     bool           // Administrators as well as Remote Desktop Users
	SealKey   *rsa.PublicKey // the host encrypts the generated password to it; >= 3072 bits, e 65537
}

func validSealKey(k *rsa.PublicKey) error {
	if k == nil || k.N == nil {
		return &FieldError{"SealKey", "must be an RSA public key"}
	}
	if b := k.N.BitLen(); b < 3072 || b > 8192 {
		return &FieldError{"SealKey", fmt.Sprintf("is an RSA key of %d bits; use 3072 to 8192", b)}
	}
	if k.E != 65537 {
		return &FieldError{"SealKey", "must have exponent 65537"}
	}
	return nil
}

func validRequestID(id string) error {
	if !reRequestID.MatchString(id) {
		return &FieldError{"RequestID", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit"}
	}
	return nil
}

// ProvisionWindows returns the program that creates (or converges) g's
// local user with a fresh host-generated password, sealed to g.SealKey.
func ProvisionWindows(g WindowsGrant) (string, error) {
	if err := validUsername(g.Username); err != nil {
		return "", err
	}
	if err := validRequestID(g.RequestID); err != nil {
		return "", err
	}
	if !reRequester.MatchString(g.Requester) {
		return "", &FieldError{"Requester", "must be 1-128 characters of A-Z, a-z, 0-9, '.', '_', '@', '+', ':' and '-', starting with a letter or digit"}
	}
	if err := validExpiry(g.ExpiresAt); err != nil {
		return "", err
	}
	if err := validSealKey(g.SealKey); err != nil {
		return "", err
	}
	admin := "0"
	if g.Admin {
		admin = "1"
	}
	data := encode([][2]string{
		{"action", "provision"},
		{"user", g.Username},
		{"request", g.RequestID},
		{"requester", g.Requester},
		{"expires", fmt.Sprint(g.ExpiresAt.Unix())},
		{"admin", admin},
		{"seal_n", base64.RawURLEncoding.EncodeToString(g.SealKey.N.Bytes())},
		{"seal_e", base64.RawURLEncoding.EncodeToString(big.NewInt(int64(g.SealKey.E)).Bytes())},
	})
	return winProgram("provision", data), nil
}

// ExtendWindows returns the program that moves username's AccountExpires
// and grant record to expiresAt.
func ExtendWindows(username string, expiresAt time.Time) (string, error) {
	if err := validUsername(username); err != nil {
		return "", err
	}
	if err := validExpiry(expiresAt); err != nil {
		return "", err
	}
	return winProgram("extend", encode([][2]string{
		{"action", "extend"}, {"user", username}, {"expires", fmt.Sprint(expiresAt.Unix())},
	})), nil
}

// RevokeWindows returns the program that logs username's sessions off and
// removes the user, its profile, group memberships and record. A user
// already gone is success; an account Passport did not make is ExitConflict.
func RevokeWindows(username string) (string, error) {
	if err := validUsername(username); err != nil {
		return "", err
	}
	return winProgram("revoke", encode([][2]string{{"action", "revoke"}, {"user", username}})), nil
}

// CheckWindows returns the read-only program whose result ParsePresence reads.
func CheckWindows(username, requestID string) (string, error) {
	if err := validUsername(username); err != nil {
		return "", err
	}
	if err := validRequestID(requestID); err != nil {
		return "", err
	}
	return winProgram("check", encode([][2]string{
		{"action", "check"}, {"user", username}, {"request", requestID},
	})), nil
}

// CollectWindows returns the read-only program that prints username's
// logons, logoffs and process creations (Security events 4624, 4634 and
// 4688) since the given time as JSON lines on stdout (collect.ReadEvents
// reads them) and its result line on stderr. It is an event log, not a
// screen recording.
func CollectWindows(username string, since time.Time) (string, error) {
	if err := validUsername(username); err != nil {
		return "", err
	}
	if since.Unix() < 1 {
		return "", &FieldError{"Since", "must be after 1970-01-01"}
	}
	return winProgram("collect", encode([][2]string{
		{"action", "collect"}, {"user", username}, {"since", fmt.Sprint(since.Unix())},
	})), nil
}

// InventoryWindows returns the read-only program listing Passport users in
// the same "accounts=" form as the Linux inventory (Result.Inventory).
func InventoryWindows() string { return winProgram("inventory", "") }

// SweepWindows returns the program that removes Passport users whose record
// expired. Provision installs it as a scheduled task running every minute.
func SweepWindows() string { return winProgram("sweep", "") }

var winBodies = map[string]*string{
	"provision": &winProvisionSource, "extend": &winExtendSource, "revoke": &winRevokeSource,
	"check": &winCheckSource, "inventory": &winInventorySource, "sweep": &winSweepSource,
	"collect": &winCollectSource,
}

const (
	winDataPrefix   = "$PassportData = '"
	winSweepOpen    = "$PassportSweepProgram = @'\n"
	winSweepClose   = "'@\n"
	winHeaderFormat = "# Passport Windows %s program. Everything in it is constant except the\n" +
		"# $PassportData line: request data, base64, which the program decodes and validates.\n"
)

// winProgram assembles a program: header, the data line, the shared library,
// the action's body and the fixed footer that runs it. Provision also
// carries the sweep program inside a single-quoted here-string, which
// PowerShell never expands.
func winProgram(action, data string) string {
	if strings.Trim(data, base64Alphabet) != "" {
		panic("hostscript: data block is not plain base64")
	}
	return winAssemble(action, data)
}

// winAssemble is winProgram without the check on data, for Template's
// marker.
func winAssemble(action, data string) string {
	body := *winBodies[action]
	if action == "provision" {
		sweep := SweepWindows()
		if strings.Contains(sweep, "\n'@") {
			panic("hostscript: the sweep program would end the here-string that carries it")
		}
		body = winSweepOpen + sweep + winSweepClose + body
	}
	return fmt.Sprintf(winHeaderFormat, action) +
		winDataPrefix + data + "'\n" +
		"$PassportAction = '" + action + "'\n" +
		winLibSource + body + winMainSource
}

// OpenPassword decrypts a successful provision result's password field with
// the grant's private key and checks it with winpass.Check. Errors never
// contain the password or the ciphertext.
func OpenPassword(key *rsa.PrivateKey, r Result) (string, error) {
	if key == nil {
		return "", errors.New("hostscript: OpenPassword needs the grant's private key")
	}
	sealed, err := SealedPassword(r, &key.PublicKey)
	if err != nil {
		return "", err
	}
	return OpenSealedPassword(key, r.User, sealed)
}

// SealedPassword returns a successful provision result's password as the
// host sealed it to the public key to, without opening it: the Passport
// service passes it to the client that made the key, and cannot read it.
// It checks that the field has the shape a seal to that key has.
func SealedPassword(r Result, to *rsa.PublicKey) (string, error) {
	if r.Action != "provision" || !r.OK {
		return "", fmt.Errorf("hostscript: not a successful provision result (action %q, code %d)", r.Action, r.Code)
	}
	if err := validUsername(r.User); err != nil {
		return "", errors.New("hostscript: provision result names no valid user")
	}
	sealed := r.Fields["password"]
	if sealed == "" {
		return "", errors.New("hostscript: provision result has no password field; the host program is not Passport's Windows provision")
	}
	ct, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", errors.New("hostscript: provision result's password field is not unpadded base64url")
	}
	if len(ct) != to.Size() {
		return "", fmt.Errorf("hostscript: provision result's password is %d bytes sealed, want %d for this key; was it sealed to another key?", len(ct), to.Size())
	}
	return sealed, nil
}

// OpenSealedPassword opens the password of user that SealedPassword
// returned, with the private half of the key it was sealed to, and checks
// it with winpass.Check. Errors never contain the password or the
// ciphertext.
func OpenSealedPassword(key *rsa.PrivateKey, user, sealed string) (string, error) {
	ct, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", errors.New("hostscript: the sealed password is not unpadded base64url")
	}
	if len(ct) != key.Size() {
		return "", fmt.Errorf("hostscript: the password is %d bytes sealed, want %d for this key; was it sealed to another key?", len(ct), key.Size())
	}
	pt, err := rsa.DecryptOAEP(sha256.New(), nil, key, ct, nil)
	if err != nil {
		return "", errors.New("hostscript: the sealed password does not open with this key (wrong key or tampered output)")
	}
	pw := string(pt)
	if err := winpass.Check(pw, user); err != nil {
		return "", fmt.Errorf("hostscript: the host's password for %s fails Passport's rules: %w", user, err)
	}
	return pw, nil
}

// winFieldRules lists, per action, the data fields in order and their rules:
// exactly what the PowerShell accepts.
var winFieldRules = map[string][]struct {
	name string
	re   *regexp.Regexp
}{
	"provision": {{"action", nil}, {"user", reUsername}, {"request", reRequestID}, {"requester", reRequester},
		{"expires", reEpoch}, {"admin", reBool}, {"seal_n", reSealN}, {"seal_e", reSealE}},
	"extend":  {{"action", nil}, {"user", reUsername}, {"expires", reEpoch}},
	"revoke":  {{"action", nil}, {"user", reUsername}},
	"check":   {{"action", nil}, {"user", reUsername}, {"request", reRequestID}},
	"collect": {{"action", nil}, {"user", reUsername}, {"since", reEpoch}},
}

// ReadWindowsProgram accepts source only if it is byte for byte one of the
// shipped Windows programs with a well-formed data line, and returns its
// action and the data fields after the same validation the program does.
func ReadWindowsProgram(source string) (action string, fields map[string]string, err error) {
	start := strings.Index(source, "\n"+winDataPrefix)
	if start < 0 {
		return "", nil, errors.New("hostscript: not a Passport Windows program: no $PassportData line")
	}
	rest := source[start+1+len(winDataPrefix):]
	end := strings.IndexByte(rest, '\'')
	if end < 0 || end > winDataMax {
		return "", nil, errors.New("hostscript: the $PassportData line is not one quoted base64 value")
	}
	data := rest[:end]
	if !reWinB64.MatchString(data) {
		return "", nil, errors.New("hostscript: the $PassportData value is not plain base64")
	}
	after := rest[end:]
	const actPrefix = "'\n$PassportAction = '"
	if !strings.HasPrefix(after, actPrefix) {
		return "", nil, errors.New("hostscript: the line after $PassportData is not Passport's")
	}
	act, _, ok := strings.Cut(after[len(actPrefix):], "'")
	if _, known := winBodies[act]; !ok || !known {
		return "", nil, errors.New("hostscript: the program names no known Windows action")
	}
	if (act == "inventory" || act == "sweep") != (data == "") {
		return "", nil, fmt.Errorf("hostscript: a %s program with the wrong data for it", act)
	}
	if source != winProgram(act, data) {
		return "", nil, fmt.Errorf("hostscript: the %s program differs from the one Passport ships", act)
	}
	if data == "" {
		return act, map[string]string{"action": act}, nil
	}
	fields, err = decodeWindowsData(act, data)
	if err != nil {
		return "", nil, err
	}
	return act, fields, nil
}

// decodeWindowsData mirrors Read-PassportData and the field checks in
// lib.ps1.
func decodeWindowsData(act, data string) (map[string]string, error) {
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		return nil, errors.New("hostscript: the data block is not valid base64")
	}
	text := string(raw)
	if !strings.HasSuffix(text, "\n") {
		return nil, errors.New("hostscript: the data block does not end with a newline")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	rules := winFieldRules[act]
	if len(lines) != len(rules)+1 || lines[0] != "format=1" {
		return nil, fmt.Errorf("hostscript: the %s data block does not have format=1 and exactly its %d fields", act, len(rules))
	}
	fields := make(map[string]string, len(rules))
	for i, rule := range rules {
		k, v, ok := strings.Cut(lines[i+1], "=")
		if !ok || k != rule.name {
			return nil, fmt.Errorf("hostscript: data field %d is not %s", i+1, rule.name)
		}
		if rule.re == nil {
			if v != act {
				return nil, errors.New("hostscript: data field action does not match the program")
			}
		} else if !rule.re.MatchString(v) {
			return nil, &FieldError{rule.name, "is refused by the host's pattern " + rule.re.String()}
		}
		fields[k] = v
	}
	if n, ok := fields["seal_n"]; ok {
		// Read-PassportData's and Protect-PassportPassword's checks:
		// 384 to 1024 bytes, no leading zero byte.
		b, err := base64.RawURLEncoding.Strict().DecodeString(n)
		if err != nil || len(b) < 384 || len(b) > 1024 || b[0] == 0 {
			return nil, &FieldError{"seal_n", "is not a base64url RSA modulus of 3072 to 8192 bits"}
		}
	}
	return fields, nil
}
