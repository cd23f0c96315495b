package ssm

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// Page sizes of the Parameter Store listings, from the service model:
// GetParametersByPath answers at most 10 at a time, DescribeParameters 50,
// and both answer 10 when MaxResults is not given.
const (
	maxParametersByPath      = 10
	maxDescribedParameters   = 50
	defaultParameterResults  = 10
	maxParameterNamesPerCall = 10
)

type namesInput struct {
	Names          []string
	WithDecryption bool
}

type getParametersOutput struct {
	Parameters        []parameterWire
	InvalidParameters []string
}

// getParameters answers for up to ten names, in the order asked. A name
// that is not there, or whose version is not, is listed in
// InvalidParameters instead of failing the call, as on AWS.
func (s *Service) getParameters(_ context.Context, in *namesInput) (*getParametersOutput, error) {
	if err := checkNames(in.Names); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &getParametersOutput{Parameters: []parameterWire{}, InvalidParameters: []string{}}
	seen := map[string]bool{}
	for _, name := range in.Names {
		if seen[name] {
			continue
		}
		seen[name] = true
		p, selector, err := s.resolveParameter(name)
		if err != nil {
			out.InvalidParameters = append(out.InvalidParameters, name)
			continue
		}
		wire, err := s.parameterWire(p, selector, in.WithDecryption)
		if err != nil {
			return nil, err
		}
		out.Parameters = append(out.Parameters, wire)
	}
	return out, nil
}

func checkNames(names []string) error {
	var v violations
	v.required(names != nil, "names")
	if names != nil && (len(names) < 1 || len(names) > maxParameterNamesPerCall) {
		v.add(names, "names", "Member must have length between 1 and %d", maxParameterNamesPerCall)
	}
	for i, n := range names {
		v.length(n, fmt.Sprintf("names.%d.member", i+1), 1, 2048)
	}
	return v.err()
}

type deleteParameterInput struct {
	Name *string
}

// deleteParameter removes a parameter with every version it has.
func (s *Service) deleteParameter(_ context.Context, in *deleteParameterInput) (*struct{}, error) {
	var v violations
	v.required(in.Name != nil, "name")
	if in.Name != nil {
		v.length(*in.Name, "name", 1, 2048)
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	name := strings.TrimSpace(*in.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.parameters[name]; !ok {
		return nil, awsjson.Errorf("ParameterNotFound", "Parameter %s not found.", clip(name))
	}
	delete(s.parameters, name)
	return &struct{}{}, nil
}

type deleteParametersOutput struct {
	DeletedParameters []string
	InvalidParameters []string
}

func (s *Service) deleteParameters(_ context.Context, in *namesInput) (*deleteParametersOutput, error) {
	if err := checkNames(in.Names); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &deleteParametersOutput{DeletedParameters: []string{}, InvalidParameters: []string{}}
	for _, raw := range in.Names {
		name := strings.TrimSpace(raw)
		if _, ok := s.parameters[name]; !ok {
			out.InvalidParameters = append(out.InvalidParameters, raw)
			continue
		}
		delete(s.parameters, name)
		out.DeletedParameters = append(out.DeletedParameters, name)
	}
	return out, nil
}

// stringFilter is a ParameterStringFilter.
type stringFilter struct {
	Key    *string
	Option *string
	Values []string
}

type getParametersByPathInput struct {
	Path             *string
	Recursive        bool
	ParameterFilters []stringFilter
	WithDecryption   bool
	MaxResults       *int64
	NextToken        *string
}

type getParametersByPathOutput struct {
	Parameters []parameterWire
	NextToken  string `json:",omitempty"`
}

// getParametersByPath lists the parameters below a path, one level deep
// or (Recursive) all of them, in name order.
//
// The lab's choice where AWS documents nothing: a name without a leading
// slash ("policy") lives at the root, so that Path "/" lists every
// parameter.
func (s *Service) getParametersByPath(_ context.Context, in *getParametersByPathInput) (*getParametersByPathOutput, error) {
	var v violations
	v.required(in.Path != nil, "path")
	if in.Path != nil {
		v.length(*in.Path, "path", 1, 2048)
	}
	if in.MaxResults != nil {
		v.valueRange(*in.MaxResults, "maxResults", 1, maxParametersByPath)
	}
	v.stringFilters(in.ParameterFilters)
	if err := v.err(); err != nil {
		return nil, err
	}
	path := strings.TrimSpace(*in.Path)
	if err := checkPath(path); err != nil {
		return nil, err
	}
	match, err := parseStringFilters(in.ParameterFilters, byPathFilterKeys)
	if err != nil {
		return nil, err
	}
	size := defaultParameterResults
	if in.MaxResults != nil {
		size = int(*in.MaxResults)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var found []parameterVersion
	for _, p := range s.latestParameters() {
		if underPath(p.name, path, in.Recursive) && match(p) {
			found = append(found, p)
		}
	}
	pg, next, err := awsjson.Page(s.pages, "GetParametersByPath:"+path, deref(in.NextToken), size, found, func(p parameterVersion) string { return p.name })
	if err != nil {
		return nil, err
	}
	out := &getParametersByPathOutput{Parameters: []parameterWire{}, NextToken: next}
	for _, p := range pg {
		wire, err := s.parameterWire(p, "", in.WithDecryption)
		if err != nil {
			return nil, err
		}
		out.Parameters = append(out.Parameters, wire)
	}
	return out, nil
}

// checkPath accepts "/" and "/a/b" (with or without a trailing slash) of
// at most 15 levels.
func checkPath(path string) error {
	if !strings.HasPrefix(path, "/") {
		return awsjson.Errorf("ValidationException", "The path %q is not valid: a path starts with a forward slash, like /passport.", clip(path))
	}
	if !parameterNamePattern.MatchString(path) || strings.Contains(path, "//") {
		return awsjson.Errorf("ValidationException", "The path %q is not valid: only letters, digits and . - _ / are allowed, with no empty level.", clip(path))
	}
	if levels := strings.Count(strings.TrimSuffix(path, "/"), "/"); levels > maxHierarchyLevels {
		return awsjson.Errorf("HierarchyLevelLimitExceededException", "The path %q has %d hierarchy levels; the limit is %d.", clip(path), levels, maxHierarchyLevels)
	}
	return nil
}

// underPath reports whether name is below path: directly, or at any depth
// when recursive.
func underPath(name, path string, recursive bool) bool {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	dir := strings.TrimSuffix(path, "/") + "/"
	rest, ok := strings.CutPrefix(name, dir)
	if !ok || rest == "" {
		return false
	}
	return recursive || !strings.Contains(rest, "/")
}

// latestParameters is every parameter's newest version, in name order.
// Callers hold s.mu.
func (s *Service) latestParameters() []parameterVersion {
	out := make([]parameterVersion, 0, len(s.parameters))
	for _, versions := range s.parameters {
		out = append(out, versions[len(versions)-1])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// legacyFilter is the deprecated ParametersFilter of DescribeParameters.
type legacyFilter struct {
	Key    string
	Values []string
}

type describeParametersInput struct {
	Filters          []legacyFilter
	ParameterFilters []stringFilter
	MaxResults       *int64
	NextToken        *string
	Shared           bool
}

type parameterMetadata struct {
	Name             string
	ARN              string
	Type             string
	KeyId            string `json:",omitempty"`
	LastModifiedDate *epoch
	LastModifiedUser string
	Description      string `json:",omitempty"`
	AllowedPattern   string `json:",omitempty"`
	Version          int64
	Tier             string
	Policies         []struct{}
	DataType         string
}

type describeParametersOutput struct {
	Parameters []parameterMetadata
	NextToken  string `json:",omitempty"`
}

// describeParameters lists parameters' metadata, never their values, in
// name order. Nothing is shared with the lab's account, so Shared lists
// nothing. The legacy Filters match exactly (Name, Type, KeyId).
func (s *Service) describeParameters(_ context.Context, in *describeParametersInput) (*describeParametersOutput, error) {
	var v violations
	if in.MaxResults != nil {
		v.valueRange(*in.MaxResults, "maxResults", 1, maxDescribedParameters)
	}
	for i, f := range in.Filters {
		if !slices.Contains([]string{"Name", "Type", "KeyId"}, f.Key) {
			v.add(f.Key, fmt.Sprintf("filters.%d.member.key", i+1), "Member must satisfy enum value set: [Name, Type, KeyId]")
		}
		if len(f.Values) < 1 || len(f.Values) > 50 {
			v.add(f.Values, fmt.Sprintf("filters.%d.member.values", i+1), "Member must have length between 1 and 50")
		}
	}
	v.stringFilters(in.ParameterFilters)
	if err := v.err(); err != nil {
		return nil, err
	}
	if len(in.Filters) > 0 && len(in.ParameterFilters) > 0 {
		return nil, awsjson.Errorf("ValidationException", "You can use either Filters or ParameterFilters in a single request, not both.")
	}
	filters := in.ParameterFilters
	for _, f := range in.Filters {
		filters = append(filters, stringFilter{Key: &f.Key, Values: f.Values})
	}
	match, err := parseStringFilters(filters, describeFilterKeys)
	if err != nil {
		return nil, err
	}
	size := defaultParameterResults
	if in.MaxResults != nil {
		size = int(*in.MaxResults)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	var found []parameterVersion
	if !in.Shared {
		for _, p := range s.latestParameters() {
			if match(p) {
				found = append(found, p)
			}
		}
	}
	pg, next, err := awsjson.Page(s.pages, "DescribeParameters", deref(in.NextToken), size, found, func(p parameterVersion) string { return p.name })
	if err != nil {
		return nil, err
	}
	out := &describeParametersOutput{Parameters: []parameterMetadata{}, NextToken: next}
	for _, p := range pg {
		out.Parameters = append(out.Parameters, parameterMetadata{
			Name: p.name, ARN: s.parameterARN(p.name), Type: p.typ, KeyId: p.keyID,
			LastModifiedDate: epochPtr(p.modified), LastModifiedUser: p.user,
			Description: p.description, AllowedPattern: p.allowedRegex,
			Version: int64(p.version), Tier: p.tier, Policies: []struct{}{}, DataType: p.dataType,
		})
	}
	return out, nil
}

var stringFilterKeyPattern = regexp.MustCompile(`^(tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType)$`)

// stringFilters checks ParameterStringFilters against the service model.
func (v *violations) stringFilters(fs []stringFilter) {
	for i, f := range fs {
		member := fmt.Sprintf("parameterFilters.%d.member", i+1)
		v.required(f.Key != nil, member+".key")
		if f.Key != nil {
			v.length(*f.Key, member+".key", 1, 132)
			v.pattern(*f.Key, member+".key", stringFilterKeyPattern)
		}
		if f.Option != nil {
			v.length(*f.Option, member+".option", 1, 10)
		}
		if f.Values != nil && (len(f.Values) < 1 || len(f.Values) > 50) {
			v.add(f.Values, member+".values", "Member must have length between 1 and 50")
		}
		for j, value := range f.Values {
			v.length(value, fmt.Sprintf("%s.values.%d.member", member, j+1), 1, 1024)
		}
	}
}

// The filter keys each listing takes, and the options each key takes
// there; the first option is the default.
var (
	describeFilterKeys = map[string][]string{
		"Name": {"Equals", "BeginsWith", "Contains"}, "Type": {"Equals", "BeginsWith"},
		"KeyId": {"Equals", "BeginsWith"}, "Path": {"OneLevel", "Recursive"},
		"Tier": {"Equals", "BeginsWith"}, "DataType": {"Equals", "BeginsWith"},
		"tag:": {"Equals", "BeginsWith"},
	}
	byPathFilterKeys = map[string][]string{
		"Type": {"Equals", "BeginsWith"}, "KeyId": {"Equals", "BeginsWith"}, "Label": {"Equals"},
	}
	filterValues = map[string][]string{
		"Type":     {"String", "StringList", "SecureString"},
		"Tier":     {"Standard", "Advanced", "Intelligent-Tiering"},
		"DataType": {"text", "aws:ec2:image", "aws:ssm:integration"},
	}
)

// parseStringFilters turns ParameterStringFilters into one predicate that
// holds when every filter matches (and any of a filter's values does).
func parseStringFilters(fs []stringFilter, allowed map[string][]string) (func(parameterVersion) bool, error) {
	var preds []func(parameterVersion) bool
	for _, f := range fs {
		key := *f.Key
		kind := key
		if strings.HasPrefix(key, "tag:") {
			kind = "tag:"
		}
		options, ok := allowed[kind]
		if !ok {
			keys := make([]string, 0, len(allowed))
			for k := range allowed {
				keys = append(keys, strings.Replace(k, "tag:", "tag:<key>", 1))
			}
			sort.Strings(keys)
			return nil, awsjson.Errorf("InvalidFilterKey", "The filter key %s is not valid here; use one of %s.", clip(key), strings.Join(keys, ", "))
		}
		option := options[0]
		if f.Option != nil {
			option = *f.Option
		}
		if !slices.Contains(options, option) {
			return nil, awsjson.Errorf("InvalidFilterOption", "The filter option %s is not valid for key %s; use one of %s.", clip(option), clip(key), strings.Join(options, ", "))
		}
		if len(f.Values) == 0 && kind != "tag:" {
			return nil, awsjson.Errorf("InvalidFilterValue", "The filter key %s needs at least one value.", clip(key))
		}
		if valid, ok := filterValues[kind]; ok && option == "Equals" {
			for _, value := range f.Values {
				if !slices.Contains(valid, value) {
					return nil, awsjson.Errorf("InvalidFilterValue", "The filter value %s is not valid for key %s; use one of %s.", clip(value), key, strings.Join(valid, ", "))
				}
			}
		}
		if kind == "Path" {
			for _, value := range f.Values {
				if err := checkPath(value); err != nil {
					return nil, awsjson.Errorf("InvalidFilterValue", "The Path filter value %q is not valid: a path starts with a forward slash, like /passport.", clip(value))
				}
			}
		}
		preds = append(preds, stringFilterPredicate(key, kind, option, f.Values))
	}
	return func(p parameterVersion) bool {
		for _, pred := range preds {
			if !pred(p) {
				return false
			}
		}
		return true
	}, nil
}

func stringFilterPredicate(key, kind, option string, values []string) func(parameterVersion) bool {
	compare := func(field string) bool {
		for _, value := range values {
			switch option {
			case "Equals":
				if field == value {
					return true
				}
			case "BeginsWith":
				if strings.HasPrefix(field, value) {
					return true
				}
			case "Contains":
				if strings.Contains(field, value) {
					return true
				}
			}
		}
		return false
	}
	switch kind {
	case "Name":
		// Names are compared as AWS shows them in ARNs: "/policy" and
		// "policy" name the same place in a filter.
		return func(p parameterVersion) bool {
			return compare(p.name) || compare("/"+strings.TrimPrefix(p.name, "/")) || compare(strings.TrimPrefix(p.name, "/"))
		}
	case "Type":
		return func(p parameterVersion) bool { return compare(p.typ) }
	case "KeyId":
		return func(p parameterVersion) bool { return p.keyID != "" && compare(p.keyID) }
	case "Tier":
		return func(p parameterVersion) bool { return compare(p.tier) }
	case "DataType":
		return func(p parameterVersion) bool { return compare(p.dataType) }
	case "Path":
		return func(p parameterVersion) bool {
			for _, path := range values {
				if underPath(p.name, path, option == "Recursive") {
					return true
				}
			}
			return false
		}
	case "Label":
		// The lab serves no LabelParameterVersion: no version has a label.
		return func(parameterVersion) bool { return false }
	}
	tagKey := strings.TrimPrefix(key, "tag:")
	return func(p parameterVersion) bool {
		v, ok := p.tags[tagKey]
		return ok && (len(values) == 0 || compare(v))
	}
}
