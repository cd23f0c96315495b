// Package hostscript builds the programs Passport runs as root on Linux
// targets through Run Command (AWS-RunShellScript): provision, extend, revoke
// and the on-host expiry sweep.
//
// Every program is static POSIX sh embedded in this package. Request data
// never becomes shell source: it is validated here, encoded as one base64
// data block, and assigned on the script's third line; the program decodes
// it and validates every field again before it acts, because the host must
// not trust what arrives over the network. Two scripts for different
// requests differ only in that line.
//
// Each program prints one final line, "passport-result key=value ...", which
// ParseResult reads; failures also name the failing step on stderr and exit
// with one of the Exit codes below.
//
// On a host, Passport touches only its own files:
//
//	/etc/passport/principals/<user>        the user's one principal: its name
//	/etc/passport/ca/<user>.pub            the CA that signed the user's certificate
//	/etc/passport/trusted-user-ca-keys     union of those CAs (sshd's TrustedUserCAKeys)
//	/etc/passport/revoked.krl              revoked certificate serials (sshd's RevokedKeys)
//	/etc/ssh/sshd_config.d/10-passport.conf  "Match Group passport" block, or the same
//	                                       block between markers at the end of
//	                                       sshd_config where it has no Include
//	/etc/sudoers.d/passport-<user>         only when sudo is granted
//	/etc/sudoers.d/passport_recorder       the recorder's sudo rules and I/O log options
//	/usr/local/lib/passport/record         the recorder's root half (sshd's ForceCommand)
//	/usr/local/lib/passport/session        what it runs as the user, inside sudo's I/O log
//	/var/lib/passport/recordings/<user>/   sudo's I/O logs of the user's sessions, one
//	                                       directory each, and "grant" (request, serials);
//	                                       kept after the user goes, until collected
//	/var/lib/passport/grants/<user>        request, requester, expiry, serial, uid
//	/var/lib/passport/uid-high-water       the last UID a Passport user had here
//	/usr/local/lib/passport/sweep          the sweep, run every minute by
//	                                       /etc/cron.d/passport-sweep or a systemd timer
//
// and the users themselves, each with a UID (and a private group of the
// same number) from Passport's range that no earlier Passport user on the
// host had, members of the group "passport", which is what
// sshd's Match and every removal check for. An account outside that group is
// never changed, whatever its name; a "passport" group that Passport did not
// create (no /etc/passport/group-created) makes provision refuse, and its
// members are never treated as Passport users.
package hostscript

import (
	_ "embed"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Exit codes of the host programs. They are mirrored in programs/lib.sh.
const (
	ExitOK       = 0
	ExitFailed   = 1 // a step failed unexpectedly; stderr names it
	ExitData     = 2 // the host refused the data block; nothing was changed
	ExitHost     = 3 // the host lacks a tool or file Passport needs (sshd, sudo, ...)
	ExitConflict = 4 // the user exists but is not this Passport grant's; left alone
	ExitNotFound = 5 // extend: the host has no such Passport user
	ExitSSHD     = 6 // sshd's configuration is invalid; Passport's change was undone
	ExitSudoers  = 7 // visudo rejected the sudoers drop-in; it was not installed
	ExitLock     = 8 // another Passport program held the host lock too long
	ExitPassword = 9 // Windows: the host's password policy refused the generated password
	// ExitUID: Linux: the host has no UID of Passport's range it can give a
	// new user safely (the next one still owns something, or the range is
	// used up); nothing was changed.
	ExitUID = 10
	// ExitRecording: Linux: the grant required recording and the host
	// cannot record sessions (no sudo, or sshd lets users set variables
	// before the recorder); nothing was changed.
	ExitRecording = 11
)

// Files the programs create on a host, for callers and tests that inspect it.
const (
	GrantsDir      = "/var/lib/passport/grants"
	PrincipalsDir  = "/etc/passport/principals"
	RevokedKeys    = "/etc/passport/revoked.krl"
	SweepPath      = "/usr/local/lib/passport/sweep"
	SessionPath    = "/usr/local/lib/passport/session"
	RecordPath     = "/usr/local/lib/passport/record"
	RecorderRules  = "/etc/sudoers.d/passport_recorder"
	RecordingsDir  = "/var/lib/passport/recordings"
	LockFile       = "/run/passport.lock" // flock(1) on it serialises the programs on a host
	SSHDDropIn     = "/etc/ssh/sshd_config.d/10-passport.conf"
	SudoersPrefix  = "/etc/sudoers.d/passport-"
	PassportGroup  = "passport"
	resultPrefix   = "passport-result "
	sweepDelimiter = "PASSPORT_SWEEP_PROGRAM"
	recorderDelim  = "PASSPORT_RECORDER_PROGRAM"
)

var (
	//go:embed programs/lib.sh
	libSource string
	//go:embed programs/provision.sh
	provisionSource string
	//go:embed programs/extend.sh
	extendSource string
	//go:embed programs/revoke.sh
	revokeSource string
	//go:embed programs/sweep.sh
	sweepSource string
	//go:embed programs/inventory.sh
	inventorySource string
	//go:embed programs/session.sh
	sessionSource string
	//go:embed programs/record.sh
	recordSource string
)

// Grant is what provision needs to create one short-lived user.
type Grant struct {
	Username    string    // the short-lived user; [a-z][a-z0-9-], at most 20
	RequestID   string    // the access request; recorded on the host
	Requester   string    // who asked (SAML subject); recorded on the host
	CAPublicKey string    // the CA that signs this user's certificates, authorized_keys form
	ExpiresAt   time.Time // end of the window; the on-host sweep removes the user after it
	Sudo        bool      // install a NOPASSWD sudoers drop-in
	Serial      uint64    // serial of the user's certificate (not 0); recorded for the sweep's KRL
	// RequireRecording refuses the host (ExitRecording, nothing changed)
	// when it cannot record sessions. Without it a host that cannot
	// record still grants, and the result says recording=off.
	RequireRecording bool
}

// Revocation is what revoke needs to remove one user and its certificate.
type Revocation struct {
	Username string
	// Serial of the certificate to add to the host's KRL, with the CA that
	// signed it. Zero means no certificate was issued: only the user goes.
	Serial      uint64
	CAPublicKey string
}

// Provision returns the script that creates (or converges) g's user on a host.
func Provision(g Grant) (string, error) {
	if err := g.validate(); err != nil {
		return "", err
	}
	caType, caKey, err := caKeyFields(g.CAPublicKey)
	if err != nil {
		return "", err
	}
	data := encode([][2]string{
		{"action", "provision"},
		{"user", g.Username},
		{"request", g.RequestID},
		{"requester", g.Requester},
		{"expires", fmt.Sprint(g.ExpiresAt.Unix())},
		{"serial", fmt.Sprint(g.Serial)},
		{"sudo", onOff(g.Sudo)},
		{"record", onOff(g.RequireRecording)},
		{"ca_type", caType},
		{"ca_key", caKey},
	})
	return program("provision", data, linuxBody("provision")), nil
}

// Extend returns the script that moves username's expiry on a host to
// expiresAt (earlier or later). The user's new certificate is the caller's.
func Extend(username string, expiresAt time.Time) (string, error) {
	if err := validUsername(username); err != nil {
		return "", err
	}
	if err := validExpiry(expiresAt); err != nil {
		return "", err
	}
	data := encode([][2]string{
		{"action", "extend"},
		{"user", username},
		{"expires", fmt.Sprint(expiresAt.Unix())},
	})
	return program("extend", data, linuxBody("extend")), nil
}

// Revoke returns the script that ends r's user's processes, removes the user
// and everything Passport made for it, and revokes the certificate serial.
func Revoke(r Revocation) (string, error) {
	if err := validUsername(r.Username); err != nil {
		return "", err
	}
	caType, caKey := "", ""
	if r.Serial != 0 {
		var err error
		if caType, caKey, err = caKeyFields(r.CAPublicKey); err != nil {
			return "", err
		}
	}
	data := encode([][2]string{
		{"action", "revoke"},
		{"user", r.Username},
		{"serial", fmt.Sprint(r.Serial)},
		{"ca_type", caType},
		{"ca_key", caKey},
	})
	return program("revoke", data, linuxBody("revoke")), nil
}

// Sweep returns the program that removes every Passport user whose grant
// record has expired. Provision installs the same program on each host and
// schedules it every minute; Passport can also run it on demand.
func Sweep() string {
	return program("sweep", "", linuxBody("sweep"))
}

// Inventory returns the program that lists the Passport users on a host with
// what their grant records say (Result.Inventory). It changes nothing; the
// reconciler uses it to find users no live grant accounts for.
func Inventory() string {
	return program("inventory", "", linuxBody("inventory"))
}

func onOff(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// encode turns fields into the data block: "key=value" lines behind a format
// line, base64-encoded. Callers have validated every value.
func encode(fields [][2]string) string {
	var b strings.Builder
	b.WriteString("format=1\n")
	for _, f := range fields {
		b.WriteString(f[0] + "=" + f[1] + "\n")
	}
	return base64.StdEncoding.EncodeToString([]byte(b.String()))
}

// program assembles a script: a fixed header, the data line, the shared
// library and the action's body (linuxBody). The data is the only
// input-dependent text.
func program(action, data, body string) string {
	if strings.Trim(data, base64Alphabet) != "" {
		// encode only ever produces this alphabet; refusing anything else
		// here keeps the single quotes below unbreakable even if it changes.
		panic("hostscript: data block is not plain base64")
	}
	return assemble(action, data, body)
}

// assemble is program without the check on data, for Template's marker.
func assemble(action, data, body string) string {
	return "#!/bin/sh\n" +
		"# Passport " + action + " program. Everything in it is constant except the next\n" +
		"# line: request data, base64, which the program decodes and validates.\n" +
		"# shellcheck disable=SC2034 # the shared part defines names not every program uses\n" +
		"PASSPORT_DATA='" + data + "'\n" +
		shipped(libSource) + body
}

// shipped is a program's source as it travels: without its comment lines,
// which are for the people reading programs/*.sh and would otherwise take
// a third of every command Run Command carries. shellcheck's directives
// stay, so the shipped text is checked as it runs.
func shipped(src string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(src, "\n") {
		if t := strings.TrimLeft(line, " \t"); strings.HasPrefix(t, "#") && !strings.HasPrefix(t, "# shellcheck ") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

// recorderFunctions wrap the recorder's two programs (record, run as root,
// and session, run as the user) in quoted here-documents, as sweepFunction
// does the sweep, for provision to install. They travel without comments,
// like every program.
func recorderFunctions() string {
	return "record_program() {\n\tcat <<'" + recorderDelim + "'\n#!/bin/sh\n" + shipped(recordSource) + recorderDelim + "\n}\n" +
		"session_program() {\n\tcat <<'" + recorderDelim + "'\n#!/bin/sh\n" + shipped(sessionSource) + recorderDelim + "\n}\n"
}

// sweepFunction wraps the sweep program in a quoted here-document, so
// provision can install it on the host; quoting makes its text inert.
func sweepFunction() string {
	return "sweep_program() {\n\tcat <<'" + sweepDelimiter + "'\n" + Sweep() + sweepDelimiter + "\n}\n"
}
