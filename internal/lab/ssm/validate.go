package ssm

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// violations collects input-constraint failures the way AWS's front end
// reports them before an operation runs: one ValidationException listing
// every failure, with the member name in lowerCamelCase.
type violations []string

func (v *violations) add(value any, member, constraint string, args ...any) {
	*v = append(*v, fmt.Sprintf("Value %s at '%s' failed to satisfy constraint: %s",
		render(value), member, fmt.Sprintf(constraint, args...)))
}

func (v violations) err() error {
	switch len(v) {
	case 0:
		return nil
	case 1:
		return awsjson.Errorf("ValidationException", "1 validation error detected: %s", v[0])
	}
	return awsjson.Errorf("ValidationException", "%d validation errors detected: %s", len(v), strings.Join(v, "; "))
}

func (v *violations) required(present bool, member string) {
	if !present {
		*v = append(*v, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", member))
	}
}

func (v *violations) length(s string, member string, min, max int) {
	n := utf8.RuneCountInString(s)
	if n < min {
		v.add(s, member, "Member must have length greater than or equal to %d", min)
	}
	if max > 0 && n > max {
		v.add(s, member, "Member must have length less than or equal to %d", max)
	}
}

func (v *violations) pattern(s string, member string, re *regexp.Regexp) {
	if !re.MatchString(s) {
		v.add(s, member, "Member must satisfy regular expression pattern: %s", re.String())
	}
}

func (v *violations) valueRange(n int64, member string, min, max int64) {
	if n < min {
		v.add(n, member, "Member must have value greater than or equal to %d", min)
	}
	if n > max {
		v.add(n, member, "Member must have value less than or equal to %d", max)
	}
}

// render quotes a value as AWS's validation messages do; long values are
// clipped so that a hostile input cannot inflate the error.
func render(value any) string {
	var s string
	switch x := value.(type) {
	case nil:
		return "null"
	case string:
		s = x
	case []string:
		s = "[" + strings.Join(x, ", ") + "]"
	default:
		s = fmt.Sprint(x)
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return "'" + s + "'"
}

// Patterns and limits from the SSM service model.
var (
	instanceIDPattern     = regexp.MustCompile(`(^i-(\w{8}|\w{17})$)|(^mi-\w{17}$)`)
	documentNamePattern   = regexp.MustCompile(`^[a-zA-Z0-9_\-.:/]{3,128}$`)
	documentVersionPat    = regexp.MustCompile(`([$]LATEST|[$]DEFAULT|^[1-9][0-9]*$)`)
	maxConcurrencyPat     = regexp.MustCompile(`^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`)
	maxErrorsPattern      = regexp.MustCompile(`^([1-9][0-9]*|[0]|[1-9][0-9]%|[0-9]%|100%)$`)
	targetKeyPattern      = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=\-@]*$|resource-groups:ResourceTypeFilters|resource-groups:Name`)
	parameterKeyIDPattern = regexp.MustCompile(`^([a-zA-Z0-9:/_-]+)$`)
)

// instanceIDs validates a list of instance ids against the model.
func (v *violations) instanceIDs(ids []string, member string) {
	if len(ids) > 50 {
		v.add(ids, member, "Member must have length less than or equal to 50")
	}
	for _, id := range ids {
		if !instanceIDPattern.MatchString(id) {
			v.add(ids, member, "Member must satisfy constraint: [Member must satisfy regular expression pattern: %s]", instanceIDPattern.String())
			return
		}
	}
}
