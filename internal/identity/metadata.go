package identity

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/crewjam/saml"
)

// maxMetadataSize bounds IdP metadata; real documents are tens of
// kilobytes even with several certificates.
const maxMetadataSize = 1 << 20

// LoadMetadata reads IdP metadata from a file or an http(s) URL. The
// metadata is the trust anchor, so fetch it over HTTPS (or from a file an
// administrator controls) in production; the lab serves it over loopback.
func LoadMetadata(ctx context.Context, source string) (*saml.EntityDescriptor, error) {
	var raw []byte
	var err error
	if strings.HasPrefix(source, "https://") || strings.HasPrefix(source, "http://") {
		raw, err = fetchMetadata(ctx, source)
	} else {
		raw, err = readMetadataFile(source)
	}
	if err != nil {
		return nil, err
	}
	return ParseMetadata(raw, source)
}

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

func fetchMetadata(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("IdP metadata URL %q: %v", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot fetch IdP metadata: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot fetch IdP metadata from %s: %s", url, resp.Status)
	}
	return readLimited(resp.Body, url)
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
