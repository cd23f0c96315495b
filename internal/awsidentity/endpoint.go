package awsidentity

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// parseEndpoint reads an STS endpoint: an absolute http or https URL with
// a host and nothing after it but "/". Errors read after "the <field> ".
func parseEndpoint(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL such as https://sts.us-east-1.amazonaws.com", clip(s, 200))
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%q has more than a scheme and host: STS answers at its root", clip(s, 200))
	}
	u.Path, u.RawPath, u.ForceQuery = "/", "", false
	return u, nil
}

// hostHeader is the Host a request to u carries and signs, as the AWS
// SDK writes it: lower case, without the scheme's default port.
func hostHeader(u *url.URL) string {
	return canonicalHost(u.Scheme, u.Host)
}

func canonicalHost(scheme, host string) string {
	host = strings.ToLower(host)
	if h, port, err := net.SplitHostPort(host); err == nil &&
		(scheme == "https" && port == "443" || scheme == "http" && port == "80") {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}
