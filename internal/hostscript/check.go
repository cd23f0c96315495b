package hostscript

import (
	_ "embed"
	"fmt"
	"strconv"
	"time"
)

//go:embed programs/check.sh
var checkSource string

// Check returns the read-only program that reports whether username's
// Passport account, and the grant record of request requestID, are on a
// host. ParsePresence reads its result.
func Check(username, requestID string) (string, error) {
	if err := validUsername(username); err != nil {
		return "", err
	}
	if !reRequestID.MatchString(requestID) {
		return "", &FieldError{"RequestID", "must be 1-64 characters of A-Z, a-z, 0-9, '.', '_' and '-', starting with a letter or digit"}
	}
	data := encode([][2]string{
		{"action", "check"},
		{"user", username},
		{"request", requestID},
	})
	return program("check", data, linuxBody("check")), nil
}

// Account is what a host has under a Passport username.
type Account string

// Accounts a check reports.
const (
	AccountPassport Account = "passport" // a Passport user
	AccountOther    Account = "other"    // an account Passport did not make; never touched
	AccountAbsent   Account = "absent"
)

// Record is which grant record a host keeps for the username.
type Record string

// Records a check reports.
const (
	RecordThis   Record = "this"  // the record of the request that was asked about
	RecordOther  Record = "other" // another request's record
	RecordAbsent Record = "absent"
)

// Presence is what the check program found on one host.
type Presence struct {
	User    string
	Account Account
	Record  Record
	// ExpiresAt is the expiry in the grant record; zero unless Record is
	// RecordThis.
	ExpiresAt time.Time
}

// Present reports whether the grant stands on the host: its Passport user
// and its own grant record are both there.
func (p Presence) Present() bool {
	return p.Account == AccountPassport && p.Record == RecordThis
}

// ParsePresence reads a check program's result. A host's output is hostile,
// so every value must be one the program can print.
func ParsePresence(r Result) (Presence, error) {
	if r.Action != "check" || !r.OK {
		return Presence{}, fmt.Errorf("hostscript: not a successful check result (action %q, code %d)", r.Action, r.Code)
	}
	p := Presence{User: r.User, Account: Account(r.Fields["account"]), Record: Record(r.Fields["record"])}
	switch p.Account {
	case AccountPassport, AccountOther, AccountAbsent:
	default:
		return Presence{}, fmt.Errorf("hostscript: check result has an unknown account value %q", p.Account)
	}
	switch p.Record {
	case RecordThis, RecordOther, RecordAbsent:
	default:
		return Presence{}, fmt.Errorf("hostscript: check result has an unknown record value %q", p.Record)
	}
	if err := validUsername(p.User); err != nil {
		return Presence{}, fmt.Errorf("hostscript: check result names no valid user")
	}
	secs, err := strconv.ParseInt(r.Fields["expires"], 10, 64)
	if err != nil || secs < 0 || secs > maxExpiry {
		return Presence{}, fmt.Errorf("hostscript: check result has an invalid expiry %q", r.Fields["expires"])
	}
	if secs > 0 {
		p.ExpiresAt = time.Unix(secs, 0)
	}
	return p, nil
}
