package documents

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// Client is the part of the SSM API Publish and Lookup use, with the
// method signatures of *ssm.Client.
type Client interface {
	DescribeDocument(context.Context, *ssm.DescribeDocumentInput, ...func(*ssm.Options)) (*ssm.DescribeDocumentOutput, error)
	GetDocument(context.Context, *ssm.GetDocumentInput, ...func(*ssm.Options)) (*ssm.GetDocumentOutput, error)
	CreateDocument(context.Context, *ssm.CreateDocumentInput, ...func(*ssm.Options)) (*ssm.CreateDocumentOutput, error)
	UpdateDocument(context.Context, *ssm.UpdateDocumentInput, ...func(*ssm.Options)) (*ssm.UpdateDocumentOutput, error)
	UpdateDocumentDefaultVersion(context.Context, *ssm.UpdateDocumentDefaultVersionInput, ...func(*ssm.Options)) (*ssm.UpdateDocumentDefaultVersionOutput, error)
}

var _ Client = (*ssm.Client)(nil)

// Change says what Publish did to a document.
type Change string

// Changes.
const (
	Created   Change = "created"   // the document did not exist
	Updated   Change = "updated"   // a new version holds this release's programs and is now the default
	Restored  Change = "restored"  // an earlier version already held them and is the default again
	Unchanged Change = "unchanged" // the default version already held them
)

// Published is a document as SSM holds it.
type Published struct {
	Document
	// Version is the document version whose content is this release's
	// program; Publish made it the default. Commands name it, so that a
	// later release publishing a new version does not break a replica
	// still running this one.
	Version string
	// Change says what Publish did; Lookup leaves it Unchanged.
	Change Change
}

// Set is Passport's documents as SSM holds them: what programs are sent
// through.
type Set struct {
	docs []Published
}

// Documents returns the set's documents in Names order.
func (s *Set) Documents() []Published { return append([]Published(nil), s.docs...) }

// Publish makes SSM hold every document with this release's programs as
// its default version: it creates a missing document, and otherwise adds a
// version (UpdateDocument, then UpdateDocumentDefaultVersion) only when
// the content changed. Running it again changes nothing. The caller needs
// ssm:DescribeDocument, ssm:GetDocument, ssm:CreateDocument,
// ssm:UpdateDocument and ssm:UpdateDocumentDefaultVersion on the documents.
func Publish(ctx context.Context, c Client) (*Set, error) {
	return each(ctx, c, publish)
}

// Lookup finds every document as published, without changing anything:
// each must exist with this release's program as its default version.
// The caller needs ssm:DescribeDocument and ssm:GetDocument.
func Lookup(ctx context.Context, c Client) (*Set, error) {
	return each(ctx, c, lookup)
}

func each(ctx context.Context, c Client, f func(context.Context, Client, Document) (Published, error)) (*Set, error) {
	docs, err := All()
	if err != nil {
		return nil, err
	}
	s := &Set{}
	for _, d := range docs {
		p, err := f(ctx, c, d)
		if err != nil {
			return nil, err
		}
		s.docs = append(s.docs, p)
	}
	return s, nil
}

func lookup(ctx context.Context, c Client, d Document) (Published, error) {
	desc, err := c.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(d.Name)})
	var missing *types.InvalidDocument
	if errors.As(err, &missing) {
		return Published{}, fmt.Errorf("documents: %s does not exist in SSM: run `passport documents publish` (with a role that may create documents) first", d.Name)
	}
	if err != nil {
		return Published{}, fmt.Errorf("documents: describing %s: %w", d.Name, err)
	}
	version := aws.ToString(desc.Document.DefaultVersion)
	same, err := holds(ctx, c, d, desc.Document)
	if err != nil {
		return Published{}, err
	}
	if !same {
		return Published{}, fmt.Errorf("documents: the default version (%s) of %s is not this release's %s %s program: run `passport documents publish` to publish it", version, d.Name, d.Platform, d.Program)
	}
	return published(d, version, desc.Document.Hash, Unchanged), nil
}

func publish(ctx context.Context, c Client, d Document) (Published, error) {
	desc, err := c.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(d.Name)})
	var missing *types.InvalidDocument
	if errors.As(err, &missing) {
		out, err := c.CreateDocument(ctx, &ssm.CreateDocumentInput{
			Name: aws.String(d.Name), Content: aws.String(d.Content),
			DocumentType: types.DocumentTypeCommand, DocumentFormat: types.DocumentFormatJson,
		})
		if err != nil {
			return Published{}, fmt.Errorf("documents: creating %s: %w", d.Name, err)
		}
		return published(d, aws.ToString(out.DocumentDescription.DocumentVersion), out.DocumentDescription.Hash, Created), nil
	}
	if err != nil {
		return Published{}, fmt.Errorf("documents: describing %s: %w", d.Name, err)
	}
	same, err := holds(ctx, c, d, desc.Document)
	if err != nil {
		return Published{}, err
	}
	if same {
		return published(d, aws.ToString(desc.Document.DefaultVersion), desc.Document.Hash, Unchanged), nil
	}

	out, err := c.UpdateDocument(ctx, &ssm.UpdateDocumentInput{
		Name: aws.String(d.Name), Content: aws.String(d.Content),
		DocumentVersion: aws.String("$LATEST"), DocumentFormat: types.DocumentFormatJson,
	})
	var duplicate *types.DuplicateDocumentContent
	switch {
	case errors.As(err, &duplicate):
		// An earlier version holds this content (a release rolled back):
		// it becomes the default again.
		return restore(ctx, c, d, aws.ToString(desc.Document.LatestVersion))
	case err != nil:
		return Published{}, fmt.Errorf("documents: updating %s: %w", d.Name, err)
	}
	version := aws.ToString(out.DocumentDescription.DocumentVersion)
	if err := setDefault(ctx, c, d, version); err != nil {
		return Published{}, err
	}
	return published(d, version, out.DocumentDescription.Hash, Updated), nil
}

// holds reports whether the described (default) version's content is d's.
// Equal hashes settle it; otherwise the content is compared, in case SSM
// hashes content in a way of its own.
func holds(ctx context.Context, c Client, d Document, desc *types.DocumentDescription) (bool, error) {
	if desc == nil {
		return false, fmt.Errorf("documents: SSM described %s without a description", d.Name)
	}
	if aws.ToString(desc.Hash) == d.Hash {
		return true, nil
	}
	content, err := contentOf(ctx, c, d.Name, aws.ToString(desc.DocumentVersion))
	if err != nil {
		return false, err
	}
	return content == d.Content, nil
}

func contentOf(ctx context.Context, c Client, name, version string) (string, error) {
	in := &ssm.GetDocumentInput{Name: aws.String(name), DocumentFormat: types.DocumentFormatJson}
	if version != "" {
		in.DocumentVersion = aws.String(version)
	}
	out, err := c.GetDocument(ctx, in)
	if err != nil {
		return "", fmt.Errorf("documents: reading version %s of %s: %w", version, name, err)
	}
	return aws.ToString(out.Content), nil
}

// restore finds the newest version of d at or below latest whose content
// is d's and makes it the default.
func restore(ctx context.Context, c Client, d Document, latest string) (Published, error) {
	n, err := strconv.Atoi(latest)
	if err != nil {
		return Published{}, fmt.Errorf("documents: SSM reports latest version %q of %s, which is not a number", latest, d.Name)
	}
	for v := n; v >= 1; v-- {
		version := strconv.Itoa(v)
		desc, err := c.DescribeDocument(ctx, &ssm.DescribeDocumentInput{Name: aws.String(d.Name), DocumentVersion: aws.String(version)})
		var gone *types.InvalidDocumentVersion
		if errors.As(err, &gone) {
			continue // a deleted version
		}
		if err != nil {
			return Published{}, fmt.Errorf("documents: describing version %s of %s: %w", version, d.Name, err)
		}
		same, err := holds(ctx, c, d, desc.Document)
		if err != nil {
			return Published{}, err
		}
		if same {
			if err := setDefault(ctx, c, d, version); err != nil {
				return Published{}, err
			}
			return published(d, version, desc.Document.Hash, Restored), nil
		}
	}
	return Published{}, fmt.Errorf("documents: SSM refused a new version of %s as a duplicate, and no version of it holds this release's program", d.Name)
}

func setDefault(ctx context.Context, c Client, d Document, version string) error {
	_, err := c.UpdateDocumentDefaultVersion(ctx, &ssm.UpdateDocumentDefaultVersionInput{Name: aws.String(d.Name), DocumentVersion: aws.String(version)})
	if err != nil {
		return fmt.Errorf("documents: making version %s the default of %s: %w", version, d.Name, err)
	}
	return nil
}

// published records SSM's own hash of the version (ours when it reports
// none): it is what SSM checks a command's DocumentHash against.
func published(d Document, version string, hash *string, change Change) Published {
	if h := aws.ToString(hash); h != "" {
		d.Hash = h
	}
	return Published{Document: d, Version: version, Change: change}
}

// Command is a document run: what is sent instead of a script.
type Command struct {
	Document string // the document's name
	Version  string // the published version
	Hash     string // its SHA-256, hex, which SSM checks
	// Parameters are the document's parameters: the data block, for the
	// programs that take one.
	Parameters map[string][]string
}

var reData = regexp.MustCompile(DataPattern)

// Command returns the document command that runs script on platform.
// script must be one of the programs package hostscript builds, byte for
// byte: anything else is refused, so nothing but Passport's programs can
// travel this way.
func (s *Set) Command(platform, script string) (Command, error) {
	for _, p := range s.docs {
		if p.Platform != platform {
			continue
		}
		cmd := Command{Document: p.Name, Version: p.Version, Hash: p.Hash}
		if !hostscript.TakesData(p.Program) {
			if script == p.prefix {
				return cmd, nil
			}
			continue
		}
		if len(script) < len(p.prefix)+len(p.suffix) || !strings.HasPrefix(script, p.prefix) || !strings.HasSuffix(script, p.suffix) {
			continue
		}
		data := script[len(p.prefix) : len(script)-len(p.suffix)]
		if !reData.MatchString(data) || len(data) > maxData {
			return Command{}, fmt.Errorf("documents: the %s program's data block is not 1 to %d characters of base64; this is a bug in Passport", p.Program, maxData)
		}
		cmd.Parameters = map[string][]string{DataParameter: {data}}
		return cmd, nil
	}
	return Command{}, fmt.Errorf("documents: the %s program to send is none of this release's programs that were published; this is a bug in Passport", platform)
}
