package winhost

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// The lab's logon check. It is NOT RDP: real Remote Desktop (X.224,
// CredSSP, NLA) is out of the lab's reach, so port 3389 speaks one line
// each way:
//
//	client: PASSPORT-LAB-LOGON <base64 user> <base64 password>\n
//	host:   OK <user>\n   or   DENIED <reason>\n
//
// and the host closes. It checks what Windows would check at an RDP logon:
// the account exists, the password matches, AccountExpires has not passed
// by the host's clock, and the account may log on remotely (Remote Desktop
// Users, or Administrators as on Windows).

// LogonVerb starts every request line.
const LogonVerb = "PASSPORT-LAB-LOGON"

// Reasons a logon is denied, as the host sends them.
const (
	ReasonUnknownUser     = "unknown user"
	ReasonWrongPassword   = "wrong password"
	ReasonExpired         = "account expired"
	ReasonNoRemoteDesktop = "not in Remote Desktop Users"
	ReasonMalformed       = "malformed"
	ReasonBusy            = "busy"
)

// maxLine bounds a request line, newline included; a longer one is
// malformed, so nothing a client sends makes the host buffer more.
const maxLine = 1024

// notRDP answers a real RDP client, whose first bytes are a TPKT header
// (03 00): an X.224 Disconnect Request, which RDP clients report as the
// server ending the connection, then a line for a person reading the bytes.
var notRDP = append([]byte{
	0x03, 0x00, 0x00, 0x0b, // TPKT: version 3, length 11
	0x06, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, // X.224 DR, reason: not specified
}, "DENIED this is the Passport lab's logon check, not an RDP server; use winhost.Logon\n"...)

// serve accepts logon connections until ln is closed.
func (h *Host) serve(ln net.Listener) {
	defer h.serving.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: let the pressure ease
			// rather than spin.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		h.state.Lock()
		if h.ln != ln {
			h.state.Unlock()
			c.Close()
			return
		}
		h.conns[c] = struct{}{}
		h.serving.Add(1)
		h.state.Unlock()
		go func() {
			defer h.serving.Done()
			h.answer(c)
			h.state.Lock()
			delete(h.conns, c)
			h.state.Unlock()
		}()
	}
}

// answer serves one connection: one line in, one line out, close.
func (h *Host) answer(c net.Conn) {
	defer linger(c)
	// The deadline bounds reading; the answer gets its own, so a client
	// that stalled is still told why it is refused.
	c.SetReadDeadline(time.Now().Add(h.cfg.LogonTimeout))
	reply := func(b []byte) {
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(b)
	}
	select {
	case h.slots <- struct{}{}:
		defer func() { <-h.slots }()
	default:
		reply([]byte("DENIED " + ReasonBusy + "\n"))
		return
	}
	r := bufio.NewReaderSize(io.LimitReader(c, maxLine), maxLine)
	if b, err := r.Peek(1); err == nil && b[0] == 0x03 {
		reply(notRDP)
		return
	}
	line, err := r.ReadSlice('\n')
	if err != nil {
		reply([]byte("DENIED " + ReasonMalformed + "\n"))
		return
	}
	user, password, ok := parseLogon(line)
	if !ok {
		reply([]byte("DENIED " + ReasonMalformed + "\n"))
		return
	}
	canonical, reason := h.logon(user, password)
	if reason != "" {
		reply([]byte("DENIED " + reason + "\n"))
		return
	}
	source, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	h.mu.Lock()
	h.recordLogon(canonical, source)
	h.mu.Unlock()
	reply([]byte("OK " + canonical + "\n"))
}

// linger closes c so that the answer arrives even when the client sent
// more than was read: closing with unread input makes the kernel send a
// reset, which can overtake the answer.
func linger(c net.Conn) {
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		c.SetReadDeadline(time.Now().Add(time.Second))
		io.CopyN(io.Discard, c, 64<<10)
	}
	c.Close()
}

// parseLogon reads a request line; ok is false for anything else.
func parseLogon(line []byte) (user, password string, ok bool) {
	s := strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r")
	// Go's base64 decoder skips CR and LF even in strict mode; the line
	// format allows neither inside a field.
	if strings.ContainsAny(s, "\r\n") {
		return "", "", false
	}
	parts := strings.Split(s, " ")
	if len(parts) != 3 || parts[0] != LogonVerb {
		return "", "", false
	}
	u, err1 := base64.StdEncoding.Strict().DecodeString(parts[1])
	p, err2 := base64.StdEncoding.Strict().DecodeString(parts[2])
	if err1 != nil || err2 != nil || !printable(string(u)) || len(u) > 104 || len(p) == 0 || !utf8.Valid(p) {
		return "", "", false
	}
	return string(u), string(p), true
}

func printable(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// logon decides a logon as Windows would, by the host's clock. It returns
// the account's own spelling of its name, or why the logon is denied.
func (h *Host) logon(user, password string) (name, reason string) {
	h.mu.Lock()
	a, ok := h.accounts[key(user)]
	var snap account
	if ok {
		snap = *a
	}
	h.mu.Unlock()
	switch {
	case !ok:
		return "", ReasonUnknownUser
	case !snap.passwordIs(password):
		return "", ReasonWrongPassword
	case !snap.Expires.IsZero() && !h.now().Before(snap.Expires):
		return "", ReasonExpired
	case !snap.InGroup(GroupRemoteDesktopUsers) && !snap.InGroup(GroupAdministrators):
		return "", ReasonNoRemoteDesktop
	}
	return snap.Name, ""
}

// DeniedError is a logon the host refused; Reason is one of the Reason
// constants (or whatever else the host said, cleaned for printing).
type DeniedError struct {
	Addr   string
	User   string
	Reason string
}

func (e *DeniedError) Error() string {
	return fmt.Sprintf("lab logon check at %s: logon of %s denied: %s", e.Addr, e.User, e.Reason)
}

// Logon checks user's password at a lab Windows host's logon check on addr
// (its port 3389, or a local end of a tunnel to it). It returns nil when
// the host answers OK, a *DeniedError with the host's reason when it
// refuses, and another error when the connection fails or the other end
// does not speak the lab protocol. No error ever holds the password.
func Logon(ctx context.Context, addr, user, password string) error {
	if !printable(user) || len(user) > 104 || password == "" || !utf8.ValidString(password) {
		return fmt.Errorf("lab logon check: user %q and a non-empty password are needed", user)
	}
	req := LogonVerb + " " + base64.StdEncoding.EncodeToString([]byte(user)) + " " + base64.StdEncoding.EncodeToString([]byte(password)) + "\n"
	if len(req) > maxLine {
		return fmt.Errorf("lab logon check: the password for %s is too long for the lab's logon line (%d bytes at most)", user, maxLine)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("lab logon check at %s: %w", addr, err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	if _, err := io.WriteString(c, req); err != nil {
		return fmt.Errorf("lab logon check at %s: sending the logon of %s: %w", addr, user, err)
	}
	line, err := bufio.NewReaderSize(io.LimitReader(c, maxLine), maxLine).ReadSlice('\n')
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("lab logon check at %s: no answer for %s: %w", addr, user, err)
	}
	answer := strings.TrimSuffix(string(line), "\n")
	verb, rest, _ := strings.Cut(answer, " ")
	switch {
	case verb == "OK" && strings.EqualFold(rest, user):
		return nil
	case verb == "DENIED" && printable(rest):
		return &DeniedError{Addr: addr, User: user, Reason: rest}
	}
	return fmt.Errorf("lab logon check at %s: the answer is not the lab's logon protocol; is %s a lab Windows host's port 3389?", addr, addr)
}
