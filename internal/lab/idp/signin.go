package idp

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// SignIn plays a person's browser without one, for scripts and tests: it
// opens the sign-in URL `passport login` printed, submits user and password
// on the lab IdP's form and posts the signed response to the ACS the way
// the IdP's page would. It returns the page the ACS answered with.
func SignIn(client *http.Client, signInURL, user, password string) (string, error) {
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := SignInResponse(context.Background(), client, signInURL, user, password)
	if err != nil {
		return "", err
	}
	return readPage(http.MethodPost, resp)
}

// SignInResponse is SignIn for a service provider whose answer matters
// more than its page: start is the SP's own sign-in URL (a redirect to
// the IdP, followed here even when client follows none) or the IdP's, and
// the ACS's answer comes back unread and, with a client that does not
// follow redirects, unfollowed: the cookie it sets, or its redirect to a
// CLI's loopback listener with a one-time code.
//
// It is a scripted client of the lab's own pages; the tests of sign-in
// itself drive a real browser (package browser).
func SignInResponse(ctx context.Context, client *http.Client, start, user, password string) (*http.Response, error) {
	acs, form, err := SignedAnswer(ctx, client, start, user, password)
	if err != nil {
		return nil, err
	}
	return send(ctx, client, http.MethodPost, acs, form)
}

// SignedAnswer is SignInResponse up to the IdP's signed answer, unposted:
// the ACS it is for and the form the IdP's page would post there. Tests
// post it themselves, twice, or changed.
func SignedAnswer(ctx context.Context, client *http.Client, start, user, password string) (string, url.Values, error) {
	resp, err := send(ctx, client, http.MethodGet, start, nil)
	if err != nil {
		return "", nil, err
	}
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && loc != "" {
		resp.Body.Close()
		if resp, err = send(ctx, client, http.MethodGet, loc, nil); err != nil {
			return "", nil, err
		}
	}
	page, err := readPage(http.MethodGet, resp)
	if err != nil {
		return "", nil, err
	}
	form := resp.Request.URL
	action, err := field(page, "action")
	if err != nil {
		return "", nil, err
	}
	form.Path, form.RawQuery = action, ""
	token, err := field(page, `name="token" value`)
	if err != nil {
		return "", nil, err
	}
	resp, err = send(ctx, client, http.MethodPost, form.String(), url.Values{"token": {token}, "username": {user}, "password": {password}})
	if err != nil {
		return "", nil, err
	}
	if page, err = readPage(http.MethodPost, resp); err != nil {
		return "", nil, err
	}
	post := url.Values{}
	for _, name := range []string{"SAMLResponse", "RelayState"} {
		v, err := field(page, `name="`+name+`" value`)
		if err != nil {
			return "", nil, err
		}
		post.Set(name, v)
	}
	acs, err := field(page, "action")
	if err != nil {
		return "", nil, err
	}
	return acs, post, nil
}

func send(ctx context.Context, client *http.Client, method, u string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	return client.Do(req)
}

// readPage reads an answer that must be a 200 page.
func readPage(method string, resp *http.Response) (string, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s %s: %s: %s", method, resp.Request.URL.Redacted(), resp.Status, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

func field(page, attr string) (string, error) {
	m := regexp.MustCompile(regexp.QuoteMeta(attr) + `="([^"]*)"`).FindStringSubmatch(page)
	if m == nil {
		return "", errors.New("the page has no " + attr + "; wrong user name or password?")
	}
	return html.UnescapeString(m[1]), nil
}
