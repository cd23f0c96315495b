// Package ec2 is the lab's slice of Amazon EC2: DescribeTags over EC2's
// query protocol (form-encoded requests, XML answers), so that Passport's
// policy can read instance tags from the lab exactly as from AWS. The tags
// are those the lab's nodes were started with; instances are the only
// resources the lab has.
package ec2

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
	"github.com/passport-access/terraform-provider-passport/internal/lab/sigv4"
)

// Version is the EC2 API version the SDK speaks.
const Version = "2016-11-15"

const namespace = "http://ec2.amazonaws.com/doc/" + Version + "/"

// Service answers EC2 calls.
type Service struct {
	server    *awsjson.Server
	instances func() map[string]map[string]string
	pages     *awsjson.Pager
}

// New returns an EC2 that checks signatures with server's credentials and
// reads every instance's tags (by instance id) from instances.
func New(server *awsjson.Server, instances func() map[string]map[string]string) *Service {
	return &Service{server: server, instances: instances, pages: awsjson.NewPager("InvalidNextToken", "The token is not valid.")}
}

// Route sends requests signed for EC2 to ec2 and everything else to
// other. EC2 and STS both take form posts to "/", and only the signature's
// credential scope (…/<region>/ec2/aws4_request) tells them apart before
// the body is read.
func Route(ec2, other http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Authorization"), "/ec2/aws4_request") {
			ec2.ServeHTTP(w, r)
			return
		}
		other.ServeHTTP(w, r)
	})
}

// ServeHTTP implements http.Handler for POST / with a form body.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := w.Header().Get("X-Amzn-Requestid")
	r, err := s.server.Verify(r, "ec2")
	if err != nil {
		writeError(w, requestID, authError(err))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, requestID, &awsjson.Error{Code: "InvalidParameterValue", Message: "The request body is not a valid form.", HTTPStatus: http.StatusBadRequest})
		return
	}
	switch action := r.PostForm.Get("Action"); action {
	case "DescribeTags":
		if err := s.server.Authorize(r.Context(), "ec2:DescribeTags", nil); err != nil {
			writeError(w, requestID, unauthorized(err))
			return
		}
		out, err := s.describeTags(r.PostForm)
		if err != nil {
			writeError(w, requestID, err)
			return
		}
		out.Xmlns, out.RequestID = namespace, requestID
		writeXML(w, http.StatusOK, out)
	default:
		writeError(w, requestID, &awsjson.Error{Code: "InvalidAction", Message: fmt.Sprintf("The action %.64q is not valid for this web service.", action), HTTPStatus: http.StatusBadRequest})
	}
}

type describeTagsResponse struct {
	XMLName   xml.Name  `xml:"DescribeTagsResponse"`
	Xmlns     string    `xml:"xmlns,attr"`
	RequestID string    `xml:"requestId"`
	Tags      []tagItem `xml:"tagSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

type tagItem struct {
	ResourceID   string `xml:"resourceId"`
	ResourceType string `xml:"resourceType"`
	Key          string `xml:"key"`
	Value        string `xml:"value"`
}

// describeTags lists the tags of the account's instances that match
// every filter (key, value, resource-id, resource-type, tag:<key>; any of
// a filter's values), ordered by instance and key, in pages.
//
// AWS documents tag:<key> as "the key/value combination of the tag"; the
// lab's reading, since DescribeTags lists tags rather than resources, is
// that it keeps the tags whose key is <key> and whose value matches.
func (s *Service) describeTags(form map[string][]string) (*describeTagsResponse, error) {
	filters, err := parseFilters(form)
	if err != nil {
		return nil, err
	}
	for _, f := range filters {
		switch {
		case f.name == "resource-id", f.name == "resource-type", f.name == "key", f.name == "value":
		case strings.HasPrefix(f.name, "tag:") && len(f.name) > 4:
		default:
			return nil, invalid(fmt.Sprintf("The filter '%.64s' is invalid", f.name))
		}
	}
	limit := 1000
	if v := first(form, "MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return nil, invalid("MaxResults must be between 5 and 1000")
		}
		limit = n
	}
	var all []tagItem
	for id, tags := range s.instances() {
		for k, v := range tags {
			item := tagItem{ResourceID: id, ResourceType: "instance", Key: k, Value: v}
			if matchesAll(item, filters) {
				all = append(all, item)
			}
		}
	}
	key := func(t tagItem) string { return t.ResourceID + "\x00" + t.Key }
	slices.SortFunc(all, func(a, b tagItem) int { return strings.Compare(key(a), key(b)) })
	pg, next, err := awsjson.Page(s.pages, "DescribeTags", first(form, "NextToken"), limit, all, key)
	if err != nil {
		return nil, err
	}
	return &describeTagsResponse{Tags: pg, NextToken: next}, nil
}

// filter is one Filter.N: a name and the values any of which may match.
type filter struct {
	name   string
	values []string
}

func matchesAll(t tagItem, filters []filter) bool {
	for _, f := range filters {
		var field string
		switch f.name {
		case "resource-id":
			field = t.ResourceID
		case "resource-type":
			field = t.ResourceType
		case "key":
			field = t.Key
		case "value":
			field = t.Value
		default: // tag:<key>
			if t.Key != strings.TrimPrefix(f.name, "tag:") {
				return false
			}
			field = t.Value
		}
		if !slices.ContainsFunc(f.values, func(pattern string) bool { return wildcardMatch(pattern, field) }) {
			return false
		}
	}
	return true
}

// wildcardMatch matches s against an EC2 filter value, where * stands for
// any run of characters, ? for one, and a backslash makes the next
// character literal.
func wildcardMatch(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	var match func(i, j int) bool
	memo := map[[2]int]bool{}
	match = func(i, j int) bool {
		if v, ok := memo[[2]int{i, j}]; ok {
			return v
		}
		var ok bool
		switch {
		case i == len(p):
			ok = j == len(r)
		case p[i] == '*':
			ok = match(i+1, j) || (j < len(r) && match(i, j+1))
		case p[i] == '?':
			ok = j < len(r) && match(i+1, j+1)
		case p[i] == '\\' && i+1 < len(p):
			ok = j < len(r) && r[j] == p[i+1] && match(i+2, j+1)
		default:
			ok = j < len(r) && r[j] == p[i] && match(i+1, j+1)
		}
		memo[[2]int{i, j}] = ok
		return ok
	}
	return match(0, 0)
}

// parseFilters reads Filter.N.Name and Filter.N.Value.M, at most 50
// filters and 200 values in all, as EC2 allows.
func parseFilters(form map[string][]string) ([]filter, error) {
	var filters []filter
	values := 0
	for n := 1; ; n++ {
		name := first(form, fmt.Sprintf("Filter.%d.Name", n))
		if name == "" {
			return filters, nil
		}
		if n > 50 {
			return nil, invalid("too many filters")
		}
		f := filter{name: name}
		for m := 1; ; m++ {
			v, ok := form[fmt.Sprintf("Filter.%d.Value.%d", n, m)]
			if !ok {
				break
			}
			f.values = append(f.values, v...)
		}
		if values += len(f.values); values > 200 {
			return nil, invalid("The maximum number of filter values specified on a single call is 200")
		}
		filters = append(filters, f)
	}
}

func first(form map[string][]string, key string) string {
	if v := form[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func invalid(msg string) *awsjson.Error {
	return &awsjson.Error{Code: "InvalidParameterValue", Message: msg, HTTPStatus: http.StatusBadRequest}
}

type errorResponse struct {
	XMLName   xml.Name `xml:"Response"`
	Errors    []apiErr `xml:"Errors>Error"`
	RequestID string   `xml:"RequestID"`
}

type apiErr struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

// writeError renders an error in EC2's own shape (EC2 differs from the
// other query services here), which the SDK decodes by Code.
func writeError(w http.ResponseWriter, requestID string, err error) {
	var e *awsjson.Error
	if !errors.As(err, &e) {
		e = &awsjson.Error{Code: "InternalError", Message: "An internal error has occurred.", HTTPStatus: http.StatusInternalServerError}
	}
	status := e.HTTPStatus
	if status == 0 {
		status = http.StatusBadRequest
	}
	writeXML(w, status, errorResponse{Errors: []apiErr{{Code: e.Code, Message: e.Message}}, RequestID: requestID})
}

// unauthorized gives a refusal by the caller's policy EC2's own code and
// wording: UnauthorizedOperation, 403, where the JSON services answer
// AccessDeniedException.
func unauthorized(err error) error {
	var e *awsjson.Error
	if !errors.As(err, &e) {
		return err
	}
	return &awsjson.Error{Code: "UnauthorizedOperation", Message: "You are not authorized to perform this operation. " + e.Message, HTTPStatus: http.StatusForbidden}
}

// authError renames the JSON protocol's signature errors to EC2's codes
// and statuses: AuthFailure is 401, a signing time outside the allowed
// skew is RequestExpired.
func authError(err error) error {
	var e *awsjson.Error
	if !errors.As(err, &e) {
		return err
	}
	var sig *sigv4.Error
	if errors.As(err, &sig) && sig.Expired {
		return &awsjson.Error{Code: "RequestExpired", Message: "Request has expired. " + e.Message, HTTPStatus: http.StatusBadRequest}
	}
	code, ok := map[string]string{
		"UnrecognizedClientException":         "AuthFailure",
		"InvalidSignatureException":           "AuthFailure",
		"MissingAuthenticationTokenException": "MissingAuthenticationToken",
		"IncompleteSignatureException":        "IncompleteSignature",
	}[e.Code]
	if !ok {
		return err
	}
	status := e.HTTPStatus
	if code == "AuthFailure" {
		status = http.StatusUnauthorized
	}
	return &awsjson.Error{Code: code, Message: e.Message, HTTPStatus: status}
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}
