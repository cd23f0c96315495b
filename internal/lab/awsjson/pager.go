package awsjson

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Pager issues and checks the opaque tokens (NextToken, Marker) that
// AWS's listings page with. A token names the listing it belongs to and
// the sort key of the last item returned, and is signed, so a forged or
// foreign token is refused rather than silently restarting the listing.
type Pager struct {
	key []byte
	// code is the error a bad token answers: InvalidNextToken for most
	// services, InvalidMarkerException for KMS.
	code, message string
}

// NewPager returns a pager whose bad tokens answer code with message.
func NewPager(code, message string) *Pager {
	key := make([]byte, 32)
	rand.Read(key)
	return &Pager{key: key, code: code, message: message}
}

type pageToken struct {
	Op    string `json:"o"`
	After string `json:"a"`
}

// Token returns the token that resumes listing op after the item whose
// sort key is after.
func (p *Pager) Token(op, after string) string {
	body, _ := json.Marshal(pageToken{Op: op, After: after})
	mac := hmac.New(sha256.New, p.key)
	mac.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// after returns the sort key a token resumes from ("" for no token).
func (p *Pager) after(op, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	bad := Errorf(p.code, "%s", p.message)
	body64, mac64, ok := strings.Cut(token, ".")
	if !ok {
		return "", bad
	}
	body, err1 := base64.RawURLEncoding.DecodeString(body64)
	sum, err2 := base64.RawURLEncoding.DecodeString(mac64)
	if err1 != nil || err2 != nil {
		return "", bad
	}
	mac := hmac.New(sha256.New, p.key)
	mac.Write(body)
	if !hmac.Equal(sum, mac.Sum(nil)) {
		return "", bad
	}
	var t pageToken
	if json.Unmarshal(body, &t) != nil || t.Op != op || t.After == "" {
		return "", bad
	}
	return t.After, nil
}

// Page returns up to max items whose keys sort after the token's key, and
// the token for the next page ("" on the last). items must be sorted by
// key, keys unique.
func Page[T any](p *Pager, op, token string, max int, items []T, key func(T) string) ([]T, string, error) {
	after, err := p.after(op, token)
	if err != nil {
		return nil, "", err
	}
	start := 0
	if after != "" {
		for start < len(items) && key(items[start]) <= after {
			start++
		}
	}
	end := min(start+max, len(items))
	next := ""
	if end < len(items) {
		next = p.Token(op, key(items[end-1]))
	}
	return items[start:end], next, nil
}
