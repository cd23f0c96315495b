package identity

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors about a response reach a terminal, a log or a browser. Every byte
// in them that came from the response is untrusted: control characters
// (C0 and C1: cursor movement, terminal escape sequences), Unicode format
// characters (bidirectional overrides that reorder what a person reads),
// and bytes that are not UTF-8 would act on whatever displays them.

// maxQuoted bounds one value from a response quoted in an error.
const maxQuoted = 120

// quote is a value from the response as an error shows it: in Go's double
// quotes with every unprintable or invisible character escaped, and cut to
// maxQuoted bytes.
func quote(s string) string {
	cut := false
	if len(s) > maxQuoted {
		s, cut = s[:maxQuoted], true
		for !utf8.ValidString(s) && len(s) > maxQuoted-utf8.UTFMax {
			s = s[:len(s)-1]
		}
	}
	q := strconv.QuoteToASCII(s)
	if cut {
		q += "..."
	}
	return q
}

// escape makes a whole message safe to show: printable text stays as it
// is, anything else becomes a Go escape (\x9b, \u202e).
func escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			b.WriteString(strings.Trim(strconv.QuoteRuneToASCII(r), "'"))
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	return strings.IndexFunc(s, unsafeRune) >= 0
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError ||
		unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r)
}

// refusal is an error whose message is safe to show, and which still
// matches what it wraps (ErrExpired) with errors.Is.
type refusal struct {
	msg string
	err error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.err }

// safe returns err with an escaped message; nil stays nil.
func safe(err error) error {
	if err == nil {
		return nil
	}
	return &refusal{msg: escape(err.Error()), err: err}
}
