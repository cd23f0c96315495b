package winhost

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Local groups the model knows. Passport's own group marks its accounts:
// an account outside it is never changed, whatever its name.
const (
	GroupRemoteDesktopUsers = "Remote Desktop Users"
	GroupAdministrators     = "Administrators"
	GroupPassportUsers      = "Passport Users"
)

// Account is one local user, as `Get-LocalUser` and the group memberships
// would show it. The password is never kept, only its salted hash.
type Account struct {
	Name string
	// Expires is the account's AccountExpires; zero means never.
	Expires time.Time
	// Groups are the local groups the account belongs to, sorted.
	Groups []string
}

// Passport reports whether Passport made the account: it is in the
// "Passport Users" group.
func (a Account) Passport() bool { return slices.Contains(a.Groups, GroupPassportUsers) }

// InGroup reports whether the account belongs to group.
func (a Account) InGroup(group string) bool { return slices.Contains(a.Groups, group) }

// Grant is the grant record the provision program keeps beside a Passport
// account (the Windows twin of /var/lib/passport/grants/<user>).
type Grant struct {
	Request   string
	Requester string
	Expires   time.Time
}

type account struct {
	Account
	salt, hash []byte
}

// Hashing with PBKDF2 keeps the model from holding anything a leaked heap
// dump could turn into a password; the cost is a lab's, not a domain
// controller's.
const hashIterations = 4096

func hashPassword(salt []byte, password string) []byte {
	key, err := pbkdf2.Key(sha256.New, password, salt, hashIterations, 32)
	if err != nil {
		// Only a key length or iteration count out of FIPS bounds fails,
		// and both are constants.
		panic(err)
	}
	return key
}

func (a *account) setPassword(password string) {
	a.salt = make([]byte, 16)
	rand.Read(a.salt)
	a.hash = hashPassword(a.salt, password)
}

func (a *account) passwordIs(password string) bool {
	return a.hash != nil && subtle.ConstantTimeCompare(hashPassword(a.salt, password), a.hash) == 1
}

func (a *account) addGroup(g string) bool {
	if a.InGroup(g) {
		return false
	}
	a.Groups = append(a.Groups, g)
	slices.Sort(a.Groups)
	return true
}

func (a *account) removeGroup(g string) bool {
	i := slices.Index(a.Groups, g)
	if i < 0 {
		return false
	}
	a.Groups = slices.Delete(a.Groups, i, i+1)
	return true
}

func key(name string) string { return strings.ToLower(name) }

// AddLocalAccount creates an account Passport did not make, as an
// administrator would: tests use it to check that Passport leaves such an
// account alone. groups are local group names; "Passport Users" is refused.
func (h *Host) AddLocalAccount(name, password string, groups ...string) error {
	if name == "" || len(name) > 20 || strings.ContainsAny(name, `"/\[]:;|=,+*?<>@ `) {
		return fmt.Errorf("%s: %q is not a Windows user name", h, name)
	}
	if slices.Contains(groups, GroupPassportUsers) {
		return fmt.Errorf("%s: AddLocalAccount makes accounts Passport did not make; leave out %q", h, GroupPassportUsers)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.accounts[key(name)]; ok {
		return fmt.Errorf("%s: account %s already exists", h, name)
	}
	a := &account{Account: Account{Name: name}}
	for _, g := range groups {
		a.addGroup(g)
	}
	a.setPassword(password)
	h.accounts[key(name)] = a
	return nil
}

// Users lists the host's local accounts by name.
func (h *Host) Users() []Account {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Account, 0, len(h.accounts))
	for _, a := range h.accounts {
		out = append(out, a.copy())
	}
	slices.SortFunc(out, func(a, b Account) int { return strings.Compare(key(a.Name), key(b.Name)) })
	return out
}

// Account returns the local account name (case-insensitive).
func (h *Host) Account(name string) (Account, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a, ok := h.accounts[key(name)]
	if !ok {
		return Account{}, false
	}
	return a.copy(), true
}

// Record returns the grant record Passport keeps for name.
func (h *Host) Record(name string) (Grant, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.records[key(name)]
	return g, ok
}

func (a *account) copy() Account {
	c := a.Account
	c.Groups = slices.Clone(a.Groups)
	return c
}
