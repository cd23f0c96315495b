// Package documents publishes Passport's host programs as Passport's own
// SSM Command documents, and turns a host program into the command that
// runs it through them.
//
// Sent directly, a program travels as the "commands" parameter of
// AWS-RunShellScript or AWS-RunPowerShellScript, so whoever may send it may
// send anything, as root, to every host. Published, each program is a
// document of its own (Passport-Linux-Provision, Passport-Windows-Revoke,
// ...) whose content is the shipped program with its data line left as
// the document parameter {{ data }}; the parameter's allowedPattern admits
// only the base64 alphabet, so SSM's textual substitution can never turn
// data into code. An IAM policy can then allow ssm:SendCommand on these
// documents and never on AWS-RunShellScript, and every command names the
// document version and its SHA-256, so SSM refuses a document someone
// changed after Passport published it.
//
// One document per program rather than one per platform with a "program"
// parameter: what a host runs is then byte for byte the program Passport
// sends directly (the same golden files, the same shellcheck, the same
// lab model of Windows hosts), no document holds a dispatcher that a
// parameter steers, each hash pins one program, and IAM can tell the
// read-only programs (check, inventory) from the ones that change hosts.
package documents

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/passport-access/terraform-provider-passport/internal/hostscript"
)

// Platforms documents run on, as SSM names them.
const (
	Linux   = hostscript.Linux
	Windows = hostscript.Windows
)

// Parameter names and rules of Passport's documents.
const (
	// DataParameter carries a program's base64 data block.
	DataParameter = "data"
	// TimeoutParameter is the step's execution timeout in seconds, named
	// and bounded as in AWS-RunShellScript, so fleet treats both alike.
	TimeoutParameter = "executionTimeout"
	// DataPattern admits the base64 alphabet only: no quote, newline,
	// space or brace can reach the program through the parameter.
	DataPattern = `^[A-Za-z0-9+/]+={0,2}$`
	// maxData bounds the data block; hostscript's own limit is lower.
	maxData = 8192
	// MaxContent is SSM's limit on a document, parameters at run time
	// included: 64 KB.
	MaxContent = 64 * 1024

	dataMarker    = "{{ " + DataParameter + " }}"
	schemaVersion = "2.2"
	// timeoutPattern is AWS-RunShellScript's: 1 to 172800 seconds.
	timeoutPattern = `([1-9][0-9]{0,4})|(1[0-6][0-9]{4})|(17[0-1][0-9]{3})|(172[0-7][0-9]{2})|(172800)`
)

// Document is one of Passport's Command documents, built from the host
// programs this binary ships.
type Document struct {
	Name     string // Passport-<Platform>-<Program>, e.g. Passport-Linux-Provision
	Platform string // Linux or Windows
	Program  string // one of hostscript.Actions
	Content  string // the document: JSON, schema 2.2
	// Hash is the hex SHA-256 of Content, which is how SSM computes a
	// document's Hash.
	Hash string

	// prefix and suffix surround the data block in the program; a program
	// that takes no data is all prefix.
	prefix, suffix string
}

// Name returns the name of the document that runs program on platform.
func Name(platform, program string) string {
	return "Passport-" + platform + "-" + title(program)
}

func title(s string) string {
	if s == "" {
		return s
	}
	return string(unicode.ToUpper(rune(s[0]))) + s[1:]
}

// Names lists every document Passport publishes, Linux first, in
// hostscript.Actions order. IAM policies name exactly these.
func Names() []string {
	var names []string
	for _, p := range []string{Linux, Windows} {
		for _, a := range hostscript.Actions {
			if hostscript.Ships(p, a) {
				names = append(names, Name(p, a))
			}
		}
	}
	return names
}

// All builds every document from the programs this binary ships.
func All() ([]Document, error) {
	var docs []Document
	for _, p := range []string{Linux, Windows} {
		for _, a := range hostscript.Actions {
			if !hostscript.Ships(p, a) {
				continue
			}
			d, err := build(p, a)
			if err != nil {
				return nil, err
			}
			docs = append(docs, d)
		}
	}
	return docs, nil
}

// content is a Command document, schema 2.2. Field order is the JSON's.
type content struct {
	SchemaVersion string               `json:"schemaVersion"`
	Description   string               `json:"description"`
	Parameters    map[string]parameter `json:"parameters"`
	MainSteps     []step               `json:"mainSteps"`
}

type parameter struct {
	Type           string `json:"type"`
	Description    string `json:"description"`
	Default        string `json:"default,omitempty"`
	AllowedPattern string `json:"allowedPattern,omitempty"`
	MinChars       int    `json:"minChars,omitempty"`
	MaxChars       int    `json:"maxChars,omitempty"`
}

type step struct {
	Action       string              `json:"action"`
	Name         string              `json:"name"`
	Precondition map[string][]string `json:"precondition"`
	Inputs       inputs              `json:"inputs"`
}

type inputs struct {
	RunCommand     []string `json:"runCommand"`
	TimeoutSeconds string   `json:"timeoutSeconds"`
}

func build(platform, program string) (Document, error) {
	source, err := hostscript.Template(platform, program, dataMarker)
	if err != nil {
		return Document{}, err
	}
	d := Document{Name: Name(platform, program), Platform: platform, Program: program, prefix: source}
	if hostscript.TakesData(program) {
		var ok bool
		d.prefix, d.suffix, ok = strings.Cut(source, dataMarker)
		if !ok || strings.Contains(d.suffix, dataMarker) {
			return Document{}, fmt.Errorf("documents: the %s %s program does not have exactly one data block", platform, program)
		}
	}
	// SSM substitutes every {{ name }} in a document and refuses one that
	// names no parameter: the programs themselves must hold none.
	if strings.Contains(d.prefix, "{{") || strings.Contains(d.suffix, "{{") {
		return Document{}, fmt.Errorf("documents: the %s %s program contains \"{{\", which SSM would read as a parameter reference", platform, program)
	}
	plugin, shell := "aws:runShellScript", "POSIX sh"
	if platform == Windows {
		plugin, shell = "aws:runPowerShellScript", "Windows PowerShell 5.1"
	}
	c := content{
		SchemaVersion: schemaVersion,
		Description: fmt.Sprintf("Passport's %s program for %s hosts (%s), exactly as this Passport release ships it. "+
			"Passport sends it with the document's version and SHA-256; do not edit it: publish again with `passport documents publish`.",
			program, platform, shell),
		Parameters: map[string]parameter{
			TimeoutParameter: {Type: "String", Default: "3600", AllowedPattern: timeoutPattern,
				Description: "(Optional) Seconds the program may run before the agent stops it: 1 to 172800."},
		},
		MainSteps: []step{{
			Action:       plugin,
			Name:         program,
			Precondition: map[string][]string{"StringEquals": {"platformType", platform}},
			Inputs: inputs{
				RunCommand:     strings.Split(strings.TrimSuffix(source, "\n"), "\n"),
				TimeoutSeconds: "{{ " + TimeoutParameter + " }}",
			},
		}},
	}
	if hostscript.TakesData(program) {
		c.Parameters[DataParameter] = parameter{Type: "String", AllowedPattern: DataPattern, MinChars: 4, MaxChars: maxData,
			Description: "(Required) The request's data block: base64 of the program's key=value lines, which the program decodes and validates again."}
	}
	// Compact, and without encoding/json's escaping of <, > and &, which
	// the programs are full of: the content stays readable in the console
	// and well inside SSM's size limit.
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return Document{}, err
	}
	d.Content = strings.TrimSuffix(b.String(), "\n")
	if len(d.Content)+maxData > MaxContent {
		return Document{}, fmt.Errorf("documents: %s is %d bytes; with a full data block it would pass SSM's limit of %d", d.Name, len(d.Content), MaxContent)
	}
	d.Hash = Hash(d.Content)
	return d, nil
}

// Hash returns the hex SHA-256 of a document's content.
func Hash(content string) string {
	sum := sha256.Sum256([]byte(content))
	return hex.EncodeToString(sum[:])
}
