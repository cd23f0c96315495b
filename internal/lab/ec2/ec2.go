// Package ec2 is the lab's slice of Amazon EC2: DescribeTags over EC2's
// query protocol (form-encoded requests, XML answers), so that Passport's
// policy can read instance tags from the lab exactly as from AWS. The tags
// are those the lab's nodes were started with.
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
)

// Version is the EC2 API version the SDK speaks.
const Version = "2016-11-15"

const namespace = "http://ec2.amazonaws.com/doc/" + Version + "/"

// Service answers EC2 calls.
type Service struct {
	server *awsjson.Server
	lookup func(instanceID string) (tags map[string]string, ok bool)
}

// New returns an EC2 that checks signatures with server's credentials and
// finds an instance's tags with lookup.
func New(server *awsjson.Server, lookup func(instanceID string) (map[string]string, bool)) *Service {
	return &Service{server: server, lookup: lookup}
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

// describeTags answers for the instances named by a resource-id filter
// (the lab cannot list every resource of an account), narrowed by key and
// resource-type filters, in pages ordered by instance and key.
func (s *Service) describeTags(form map[string][]string) (*describeTagsResponse, error) {
	filters, err := parseFilters(form)
	if err != nil {
		return nil, err
	}
	ids := filters["resource-id"]
	if len(ids) == 0 {
		return nil, invalid("the lab's DescribeTags needs a resource-id filter naming the instances")
	}
	if len(ids) > 200 {
		return nil, invalid("The maximum number of filter values specified on a single call is 200")
	}
	for name := range filters {
		if name != "resource-id" && name != "resource-type" && name != "key" {
			return nil, invalid(fmt.Sprintf("The filter '%.64s' is invalid", name))
		}
	}
	if types, ok := filters["resource-type"]; ok && !slices.Contains(types, "instance") {
		return &describeTagsResponse{}, nil
	}
	var all []tagItem
	for _, id := range ids {
		tags, ok := s.lookup(id)
		if !ok {
			continue
		}
		for k, v := range tags {
			if keys, ok := filters["key"]; ok && !slices.Contains(keys, k) {
				continue
			}
			all = append(all, tagItem{ResourceID: id, ResourceType: "instance", Key: k, Value: v})
		}
	}
	slices.SortFunc(all, func(a, b tagItem) int {
		return strings.Compare(a.ResourceID+"\x00"+a.Key, b.ResourceID+"\x00"+b.Key)
	})
	limit := 1000
	if v := first(form, "MaxResults"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 1000 {
			return nil, invalid("MaxResults must be between 5 and 1000")
		}
		limit = n
	}
	start := 0
	if v := first(form, "NextToken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > len(all) {
			return nil, &awsjson.Error{Code: "InvalidNextToken", Message: "The token is not valid.", HTTPStatus: http.StatusBadRequest}
		}
		start = n
	}
	out := &describeTagsResponse{Tags: all[start:min(start+limit, len(all))]}
	if start+limit < len(all) {
		out.NextToken = strconv.Itoa(start + limit)
	}
	return out, nil
}

// parseFilters reads Filter.N.Name and Filter.N.Value.M.
func parseFilters(form map[string][]string) (map[string][]string, error) {
	filters := map[string][]string{}
	for n := 1; ; n++ {
		name := first(form, fmt.Sprintf("Filter.%d.Name", n))
		if name == "" {
			return filters, nil
		}
		if n > 50 {
			return nil, invalid("too many filters")
		}
		for m := 1; ; m++ {
			v, ok := form[fmt.Sprintf("Filter.%d.Value.%d", n, m)]
			if !ok {
				break
			}
			if m > 200 {
				return nil, invalid("The maximum number of filter values specified on a single call is 200")
			}
			filters[name] = append(filters[name], v...)
		}
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

// authError renames the JSON protocol's signature errors to EC2's codes.
func authError(err error) error {
	var e *awsjson.Error
	if !errors.As(err, &e) {
		return err
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
	return &awsjson.Error{Code: code, Message: e.Message, HTTPStatus: e.HTTPStatus}
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
