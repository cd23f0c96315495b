package ssm

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/node"
)

// What the lab reads from a Command document and what its agent does with
// it. The lab runs the documents Run Command needs for scripts: schema 2.2
// (mainSteps) or 1.2 (runtimeConfig), one aws:runShellScript or
// aws:runPowerShellScript step, String and StringList parameters. It
// refuses any other document with InvalidDocumentContent naming what it
// lacks, so that a test never passes on a document the lab only pretended
// to run.

// Plugins the lab's agents run, and the platform each runs on in the lab
// (AWS also runs PowerShell on Linux; the lab's Linux hosts have none).
var stepPlatforms = map[string]string{
	"aws:runShellScript":      node.Linux,
	"aws:runPowerShellScript": node.Windows,
}

// spec is a document's content as the lab reads it.
type spec struct {
	schema      string
	description string
	params      []docParam // by name
	step        docStep
}

// docParam is one declared parameter.
type docParam struct {
	name, typ, description string
	def                    []string // the default's values; nil when there is none
	hasDefault             bool
	allowedValues          []string
	pattern                *regexp.Regexp
	patternText            string
	minChars, maxChars     int // -1 when not declared
	minItems, maxItems     int
}

// docStep is the document's one step.
type docStep struct {
	name, action, platform string
	// runRef names the StringList parameter runCommand is ("{{ commands }}");
	// otherwise runLines are lines that may reference String parameters.
	runRef           string
	runLines         []string
	workingDirectory string
	timeoutSeconds   string
}

// reference matches a parameter reference; SSM allows spaces inside the
// braces.
var reference = regexp.MustCompile(`\{\{\s*([A-Za-z0-9_.:/-]+)\s*\}\}`)

var paramName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

func invalidContent(format string, args ...any) error {
	return awsjson.Errorf("InvalidDocumentContent", "The content for the document is not valid: %s", fmt.Sprintf(format, args...))
}

// parseSpec reads a Command document's JSON content.
func parseSpec(content string) (*spec, error) {
	var raw struct {
		SchemaVersion *string                    `json:"schemaVersion"`
		Description   string                     `json:"description"`
		Parameters    map[string]json.RawMessage `json:"parameters"`
		MainSteps     []struct {
			Action       string                     `json:"action"`
			Name         string                     `json:"name"`
			Precondition map[string][]string        `json:"precondition"`
			Inputs       map[string]json.RawMessage `json:"inputs"`
		} `json:"mainSteps"`
		RuntimeConfig map[string]struct {
			Properties []map[string]json.RawMessage `json:"properties"`
		} `json:"runtimeConfig"`
	}
	dec := json.NewDecoder(strings.NewReader(content))
	if err := dec.Decode(&raw); err != nil {
		return nil, invalidContent("it is not a JSON object of a Command document (%v). The lab reads JSON documents only.", clipErr(err))
	}
	if dec.More() {
		return nil, invalidContent("it has data after its JSON object.")
	}
	if raw.SchemaVersion == nil {
		return nil, invalidContent("schemaVersion is missing.")
	}
	sp := &spec{schema: *raw.SchemaVersion, description: raw.Description}
	names := make([]string, 0, len(raw.Parameters))
	for name := range raw.Parameters {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p, err := parseParam(name, raw.Parameters[name])
		if err != nil {
			return nil, err
		}
		sp.params = append(sp.params, p)
	}

	var inputs map[string]json.RawMessage
	switch sp.schema {
	case "2.2":
		if len(raw.MainSteps) != 1 {
			return nil, invalidContent("the lab runs documents of exactly one step; this one has %d mainSteps.", len(raw.MainSteps))
		}
		st := raw.MainSteps[0]
		if !paramName.MatchString(st.Name) {
			return nil, invalidContent("the step's name %q must be 1 to 128 characters of letters, digits, '_', '.' and '-'.", clip(st.Name))
		}
		sp.step.name, sp.step.action, inputs = st.Name, st.Action, st.Inputs
		if err := sp.step.checkPlugin(); err != nil {
			return nil, err
		}
		if st.Precondition != nil {
			want := []string{"platformType", sp.step.platform}
			if len(st.Precondition) != 1 || !slices.Equal(st.Precondition["StringEquals"], want) {
				return nil, invalidContent(`the lab takes one precondition, {"StringEquals": ["platformType", %q]}, for a %s step.`, sp.step.platform, sp.step.action)
			}
		}
	case "1.2":
		if len(raw.RuntimeConfig) != 1 {
			return nil, invalidContent("the lab runs documents of exactly one plugin; this one has %d in runtimeConfig.", len(raw.RuntimeConfig))
		}
		for plugin, cfg := range raw.RuntimeConfig {
			if len(cfg.Properties) != 1 {
				return nil, invalidContent("the lab runs one set of properties per plugin; %s has %d.", clip(plugin), len(cfg.Properties))
			}
			// Schema 1.2 names the plugin after its action.
			sp.step.name, sp.step.action, inputs = plugin, plugin, cfg.Properties[0]
			delete(inputs, "id")
		}
		if err := sp.step.checkPlugin(); err != nil {
			return nil, err
		}
	default:
		return nil, awsjson.Errorf("InvalidDocumentSchemaVersion", "The lab runs Command documents of schemaVersion 2.2 and 1.2, not %q.", clip(sp.schema))
	}
	if err := sp.readInputs(inputs); err != nil {
		return nil, err
	}
	return sp, nil
}

func (st *docStep) checkPlugin() error {
	platform, ok := stepPlatforms[st.action]
	if !ok {
		return invalidContent("the lab runs aws:runShellScript and aws:runPowerShellScript steps only, not %q.", clip(st.action))
	}
	st.platform = platform
	return nil
}

func parseParam(name string, def json.RawMessage) (docParam, error) {
	if !paramName.MatchString(name) {
		return docParam{}, invalidContent("parameter name %q must be 1 to 128 characters of letters, digits, '_', '.' and '-'.", clip(name))
	}
	var raw struct {
		Type           string          `json:"type"`
		Description    string          `json:"description"`
		Default        json.RawMessage `json:"default"`
		AllowedValues  []string        `json:"allowedValues"`
		AllowedPattern *string         `json:"allowedPattern"`
		MinChars       *int            `json:"minChars"`
		MaxChars       *int            `json:"maxChars"`
		MinItems       *int            `json:"minItems"`
		MaxItems       *int            `json:"maxItems"`
		DisplayType    string          `json:"displayType"`
	}
	if err := json.Unmarshal(def, &raw); err != nil {
		return docParam{}, invalidContent("parameter %s is not a parameter definition (%v).", name, clipErr(err))
	}
	p := docParam{name: name, typ: raw.Type, description: raw.Description, allowedValues: raw.AllowedValues,
		minChars: intOr(raw.MinChars), maxChars: intOr(raw.MaxChars), minItems: intOr(raw.MinItems), maxItems: intOr(raw.MaxItems)}
	switch raw.Type {
	case "String":
		if raw.MinItems != nil || raw.MaxItems != nil {
			return docParam{}, invalidContent("parameter %s is a String; minItems and maxItems are for StringList.", name)
		}
	case "StringList":
	default:
		return docParam{}, invalidContent("parameter %s has type %q; the lab supports String and StringList.", name, clip(raw.Type))
	}
	if len(raw.Default) > 0 && string(raw.Default) != "null" {
		p.hasDefault = true
		if raw.Type == "String" {
			var s string
			if json.Unmarshal(raw.Default, &s) != nil {
				return docParam{}, invalidContent("the default of String parameter %s is not a string.", name)
			}
			p.def = []string{s}
		} else if json.Unmarshal(raw.Default, &p.def) != nil {
			return docParam{}, invalidContent("the default of StringList parameter %s is not a list of strings.", name)
		}
	}
	if raw.AllowedPattern != nil {
		// AWS matches the whole value; Go's RE2 stands in for Java's
		// regular expressions, which agree on every pattern Passport and
		// AWS's own documents use.
		re, err := regexp.Compile(`^(?:` + *raw.AllowedPattern + `)$`)
		if err != nil {
			return docParam{}, invalidContent("the allowedPattern of parameter %s does not compile (%v).", name, clipErr(err))
		}
		p.pattern, p.patternText = re, *raw.AllowedPattern
	}
	return p, nil
}

func intOr(p *int) int {
	if p == nil {
		return -1
	}
	return *p
}

// readInputs reads the step's inputs and checks that every reference
// names a declared parameter of a type it can stand for.
func (sp *spec) readInputs(inputs map[string]json.RawMessage) error {
	st := &sp.step
	for key, value := range inputs {
		switch key {
		case "runCommand":
			var ref string
			if json.Unmarshal(value, &ref) == nil {
				st.runRef = ref
			} else if json.Unmarshal(value, &st.runLines) != nil {
				return invalidContent("runCommand of step %s is neither a list of lines nor a parameter reference.", st.name)
			}
		case "workingDirectory":
			if json.Unmarshal(value, &st.workingDirectory) != nil {
				return invalidContent("workingDirectory of step %s is not a string.", st.name)
			}
		case "timeoutSeconds":
			var n json.Number
			if json.Unmarshal(value, &st.timeoutSeconds) != nil {
				if json.Unmarshal(value, &n) != nil {
					return invalidContent("timeoutSeconds of step %s is neither a number nor a string.", st.name)
				}
				st.timeoutSeconds = n.String()
			}
		default:
			return invalidContent("the lab's agent takes runCommand, workingDirectory and timeoutSeconds, not %q, in step %s.", clip(key), st.name)
		}
	}
	if st.runRef == "" && st.runLines == nil {
		return invalidContent("step %s has no runCommand.", st.name)
	}
	if st.runRef != "" {
		m := reference.FindStringSubmatch(st.runRef)
		if m == nil || m[0] != strings.TrimSpace(st.runRef) {
			return invalidContent("runCommand of step %s must be a list of lines or one StringList parameter reference.", st.name)
		}
		p := sp.param(m[1])
		if p == nil {
			return invalidContent("step %s refers to parameter %q, which the document does not declare.", st.name, m[1])
		}
		if p.typ == "StringList" {
			st.runRef = p.name
		} else {
			st.runLines, st.runRef = []string{st.runRef}, ""
		}
	}
	texts := append(slices.Clone(st.runLines), st.workingDirectory, st.timeoutSeconds)
	for _, text := range texts {
		for _, m := range reference.FindAllStringSubmatch(text, -1) {
			p := sp.param(m[1])
			switch {
			case p == nil:
				return invalidContent("step %s refers to parameter %q, which the document does not declare.", st.name, clip(m[1]))
			case p.typ != "String":
				return invalidContent("step %s uses StringList parameter %s inside text; only a String can be.", st.name, p.name)
			}
		}
	}
	return nil
}

func (sp *spec) param(name string) *docParam {
	for i := range sp.params {
		if sp.params[i].name == name {
			return &sp.params[i]
		}
	}
	return nil
}

// values checks SendCommand's parameters against the declarations, as
// Run Command does before it sends anything, and returns every declared
// parameter's values, defaults filled in. Values are never quoted back:
// SendCommand's Parameters are sensitive.
func (sp *spec) values(docName string, given map[string][]string) (map[string][]string, error) {
	bad := func(format string, args ...any) error {
		return awsjson.Errorf("InvalidParameters", "Parameters provided to document %s are invalid: %s", docName, fmt.Sprintf(format, args...))
	}
	names := make([]string, len(sp.params))
	for i, p := range sp.params {
		names[i] = p.name
	}
	for name := range given {
		if sp.param(name) == nil {
			return nil, bad("%q is not a parameter of this document (it takes %s).", clip(name), list(names))
		}
	}
	out := make(map[string][]string, len(sp.params))
	for _, p := range sp.params {
		v, ok := given[p.name]
		if !ok || len(v) == 0 && p.typ == "StringList" && !p.hasDefault {
			if !p.hasDefault {
				return nil, bad("%s is required.", p.name)
			}
			out[p.name] = p.def
			continue
		}
		if p.typ == "String" && len(v) != 1 {
			return nil, bad("%s is a String and takes exactly one value, not %d.", p.name, len(v))
		}
		if p.minItems >= 0 && len(v) < p.minItems || p.maxItems >= 0 && len(v) > p.maxItems {
			return nil, bad("%s takes %s values, not %d.", p.name, bounds(p.minItems, p.maxItems), len(v))
		}
		for _, s := range v {
			n := utf8.RuneCountInString(s)
			switch {
			case p.allowedValues != nil && !slices.Contains(p.allowedValues, s):
				return nil, bad("%s must be one of %s.", p.name, list(p.allowedValues))
			case p.pattern != nil && !p.pattern.MatchString(s):
				return nil, bad("%s does not match its allowed pattern %s.", p.name, p.patternText)
			case p.minChars >= 0 && n < p.minChars || p.maxChars >= 0 && n > p.maxChars:
				return nil, bad("%s must be %s characters long, not %d.", p.name, bounds(p.minChars, p.maxChars), n)
			}
		}
		out[p.name] = v
	}
	return out, nil
}

func bounds(lo, hi int) string {
	switch {
	case lo >= 0 && hi >= 0:
		return fmt.Sprintf("%d to %d", lo, hi)
	case lo >= 0:
		return fmt.Sprintf("at least %d", lo)
	}
	return fmt.Sprintf("at most %d", hi)
}

func list(items []string) string {
	switch len(items) {
	case 0:
		return "none"
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// script is what the lab's agent runs for the step once parameters are
// substituted: like the SSM agent, it writes the runCommand lines to the
// script file joined by newlines and ends the file with one, and an
// unusable timeoutSeconds means the agent's default, 3600.
func (sp *spec) script(docName string, values map[string][]string) node.Script {
	st := sp.step
	subst := func(text string) string {
		return reference.ReplaceAllStringFunc(text, func(ref string) string {
			name := reference.FindStringSubmatch(ref)[1]
			return values[name][0]
		})
	}
	lines := values[st.runRef]
	if st.runRef == "" {
		lines = make([]string, len(st.runLines))
		for i, l := range st.runLines {
			lines[i] = subst(l)
		}
	}
	timeout := defaultExecutionTimeout
	if n, err := strconv.Atoi(subst(st.timeoutSeconds)); err == nil && n >= 1 && n <= 172800 {
		timeout = n
	}
	return node.Script{
		Document:         docName,
		Plugin:           st.action,
		Source:           strings.Join(lines, "\n") + "\n",
		WorkingDirectory: subst(st.workingDirectory),
		Timeout:          time.Duration(timeout) * time.Second,
	}
}

// platformTypes is what DescribeDocument reports a document runs on.
func (sp *spec) platformTypes() []string {
	if sp.step.action == "aws:runPowerShellScript" {
		return []string{"Windows", "Linux", "MacOS"}
	}
	return []string{"Linux", "MacOS"}
}

// parametersWire is the document's parameters as DescribeDocument lists
// them; a StringList's default is its JSON.
func (sp *spec) parametersWire() []documentParameter {
	var out []documentParameter
	for _, p := range sp.params {
		w := documentParameter{Name: p.name, Type: p.typ, Description: p.description}
		if p.hasDefault {
			d := strings.Join(p.def, "")
			if p.typ == "StringList" {
				b, _ := json.Marshal(p.def)
				d = string(b)
			}
			w.DefaultValue = &d
		}
		out = append(out, w)
	}
	return out
}

func clipErr(err error) string { return clip(err.Error()) }
