package idp

import (
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
	page, err := visit(client, http.MethodGet, signInURL, nil)
	if err != nil {
		return "", err
	}
	form, err := url.Parse(signInURL)
	if err != nil {
		return "", err
	}
	action, err := field(page, "action")
	if err != nil {
		return "", err
	}
	form.Path, form.RawQuery = action, ""
	token, err := field(page, `name="token" value`)
	if err != nil {
		return "", err
	}
	page, err = visit(client, http.MethodPost, form.String(), url.Values{"token": {token}, "username": {user}, "password": {password}})
	if err != nil {
		return "", err
	}
	post := url.Values{}
	for _, name := range []string{"SAMLResponse", "RelayState"} {
		v, err := field(page, `name="`+name+`" value`)
		if err != nil {
			return "", err
		}
		post.Set(name, v)
	}
	acs, err := field(page, "action")
	if err != nil {
		return "", err
	}
	return visit(client, http.MethodPost, acs, post)
}

func visit(client *http.Client, method, u string, form url.Values) (string, error) {
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, strings.TrimSpace(string(body)))
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
