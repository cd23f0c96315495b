package identity

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/crewjam/saml"
)

// maxMetadataSize bounds IdP metadata; real documents are tens of
// kilobytes even with several certificates.
const maxMetadataSize = 1 << 20

// LoadMetadata reads IdP metadata from a file or an https URL. The
// metadata is the trust anchor, so it travels over HTTPS only: plain http
// is accepted from a loopback address alone (the lab, an IdP on this
// machine), a redirect may never leave HTTPS, and every fetch gives up
// after MetadataTimeout.
func LoadMetadata(ctx context.Context, source string) (*saml.EntityDescriptor, error) {
	var raw []byte
	var err error
	if strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://") {
		raw, err = fetchMetadata(ctx, source)
	} else {
		raw, err = readMetadataFile(source)
	}
	if err != nil {
		return nil, safe(err)
	}
	md, err := ParseMetadata(raw, source)
	return md, safe(err)
}

// MetadataTimeout bounds one fetch of IdP metadata, redirects included.
const MetadataTimeout = 30 * time.Second

// How fetches reach the network: a test trusts its own TLS server here and
// shortens the timeout; everything else uses the defaults.
var (
	metadataRoundTripper http.RoundTripper
	metadataTimeout      = MetadataTimeout
)

// maxMetadataRedirects bounds the redirects a fetch follows.
const maxMetadataRedirects = 5

// ParseMetadata parses an EntityDescriptor for an IdP; source names it in
// errors.
func ParseMetadata(raw []byte, source string) (*saml.EntityDescriptor, error) {
	var md saml.EntityDescriptor
	if err := xml.Unmarshal(raw, &md); err != nil {
		return nil, fmt.Errorf("IdP metadata %s is not a SAML EntityDescriptor: %v", source, err)
	}
	if md.EntityID == "" || len(md.IDPSSODescriptors) == 0 {
		return nil, fmt.Errorf("IdP metadata %s describes no identity provider (entityID and IDPSSODescriptor are required)", source)
	}
	if _, err := SigningCertificates(&md); err != nil {
		return nil, fmt.Errorf("IdP metadata %s: %w", source, err)
	}
	return &md, nil
}

func readMetadataFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read IdP metadata: %w", err)
	}
	defer f.Close()
	return readLimited(f, path)
}

func fetchMetadata(ctx context.Context, source string) ([]byte, error) {
	u, err := url.Parse(source)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("IdP metadata URL %s is not a valid URL", quote(source))
	}
	if err := metadataTransport(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("IdP metadata URL %s: %v", quote(source), err)
	}
	client := &http.Client{
		Transport: metadataRoundTripper,
		Timeout:   metadataTimeout,
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			if len(via) >= maxMetadataRedirects {
				return fmt.Errorf("more than %d redirects", maxMetadataRedirects)
			}
			if via[0].URL.Scheme == "https" && next.URL.Scheme != "https" {
				return fmt.Errorf("a redirect from https to %s (%s), which would let anyone on the network hand over other signing keys", next.URL.Scheme, quote(next.URL.Redacted()))
			}
			return metadataTransport(next.URL)
		},
	}
	resp, err := client.Do(req)
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return nil, fmt.Errorf("cannot fetch IdP metadata from %s: no answer within %s; check the URL and this machine's network", quote(source), metadataTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot fetch IdP metadata from %s: %w", quote(source), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot fetch IdP metadata from %s: the server answered %s", quote(source), quote(resp.Status))
	}
	return readLimited(resp.Body, source)
}

// metadataTransport refuses a metadata URL that is not https, unless it
// names a loopback address: a person on the network path could otherwise
// hand Passport their own signing keys.
func metadataTransport(u *url.URL) error {
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		host := u.Hostname()
		if ip, err := netip.ParseAddr(host); (err == nil && ip.IsLoopback()) || strings.EqualFold(host, "localhost") {
			return nil
		}
		return fmt.Errorf("IdP metadata %s comes over plain http from another machine: anyone on the network path could replace the IdP's signing keys; use its https URL (plain http is accepted from this machine's loopback only)", quote(u.Redacted()))
	}
	return fmt.Errorf("IdP metadata %s is neither https nor a file", quote(u.Redacted()))
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func readLimited(r io.Reader, source string) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read IdP metadata %s: %v", source, err)
	}
	if len(raw) > maxMetadataSize {
		return nil, fmt.Errorf("IdP metadata %s is larger than %d bytes", source, maxMetadataSize)
	}
	return raw, nil
}
