// Package sts is the lab's Security Token Service over AWS's query
// protocol (form-encoded requests, XML answers), as the SDK's STS client
// and the AWS CLI speak it. It answers GetCallerIdentity, which tells the
// provider which AWS principal is asking for access.
package sts

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/passport-access/terraform-provider-passport/internal/lab/awsjson"
)

// Identity is the principal behind an access key.
type Identity struct {
	Arn     string
	UserID  string
	Account string
	// Tags are the principal's IAM tags, such as SSMSessionRunAs, which
	// Session Manager reads.
	Tags map[string]string
}

// Service answers STS calls for the identities it knows.
type Service struct {
	server *awsjson.Server

	mu         sync.Mutex
	identities map[string]Identity // by access key id
}

// New returns an STS that checks signatures with server's credentials.
func New(server *awsjson.Server) *Service {
	return &Service{server: server, identities: map[string]Identity{}}
}

// SetIdentity says who an access key belongs to.
func (s *Service) SetIdentity(accessKeyID string, id Identity) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.identities[accessKeyID] = id
}

// Identity returns who an access key belongs to.
func (s *Service) Identity(accessKeyID string) (Identity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.identities[accessKeyID]
	return id, ok
}

const namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

// ServeHTTP implements http.Handler for POST / with a form body.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := w.Header().Get("X-Amzn-Requestid")
	r, err := s.server.Verify(r, "sts")
	if err != nil {
		writeError(w, requestID, queryAuthError(err))
		return
	}
	if err := r.ParseForm(); err != nil {
		writeError(w, requestID, &awsjson.Error{Code: "MalformedInput", Message: "The request body is not a valid form.", HTTPStatus: http.StatusBadRequest})
		return
	}
	switch action := r.PostForm.Get("Action"); action {
	case "GetCallerIdentity":
		// No policy can deny it, on AWS as here: every identity may ask
		// who it is.
		id, ok := s.Identity(awsjson.CallerAccessKey(r.Context()))
		if !ok {
			writeError(w, requestID, &awsjson.Error{Code: "InvalidClientTokenId", Message: "The security token included in the request is invalid.", HTTPStatus: http.StatusForbidden})
			return
		}
		writeXML(w, http.StatusOK, getCallerIdentityResponse{
			Xmlns:    namespace,
			Result:   getCallerIdentityResult{Arn: id.Arn, UserID: id.UserID, Account: id.Account},
			Metadata: responseMetadata{RequestID: requestID},
		})
	default:
		writeError(w, requestID, &awsjson.Error{Code: "InvalidAction", Message: fmt.Sprintf("Could not find operation %.64q for version 2011-06-15.", action), HTTPStatus: http.StatusBadRequest})
	}
}

type getCallerIdentityResponse struct {
	XMLName  xml.Name                `xml:"GetCallerIdentityResponse"`
	Xmlns    string                  `xml:"xmlns,attr"`
	Result   getCallerIdentityResult `xml:"GetCallerIdentityResult"`
	Metadata responseMetadata        `xml:"ResponseMetadata"`
}

type getCallerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Xmlns   string   `xml:"xmlns,attr"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

// writeError renders an error in the query protocol's shape, which the
// SDK decodes into its typed errors by Code.
func writeError(w http.ResponseWriter, requestID string, err error) {
	var e *awsjson.Error
	if !errors.As(err, &e) {
		e = &awsjson.Error{Code: "InternalFailure", Message: "The request processing has failed because of an unknown error.", HTTPStatus: http.StatusInternalServerError}
	}
	var resp errorResponse
	resp.Xmlns = namespace
	resp.Error.Type = "Sender"
	if e.HTTPStatus >= 500 {
		resp.Error.Type = "Receiver"
	}
	resp.Error.Code, resp.Error.Message, resp.RequestID = e.Code, e.Message, requestID
	status := e.HTTPStatus
	if status == 0 {
		status = http.StatusBadRequest
	}
	writeXML(w, status, resp)
}

// queryAuthError renames the JSON protocol's signature errors to the codes
// AWS's query-protocol services answer with.
func queryAuthError(err error) error {
	var e *awsjson.Error
	if !errors.As(err, &e) {
		return err
	}
	code, ok := map[string]string{
		"UnrecognizedClientException":         "InvalidClientTokenId",
		"InvalidSignatureException":           "SignatureDoesNotMatch",
		"MissingAuthenticationTokenException": "MissingAuthenticationToken",
		"IncompleteSignatureException":        "IncompleteSignature",
	}[e.Code]
	if !ok {
		return err
	}
	return &awsjson.Error{Code: code, Message: e.Message, HTTPStatus: http.StatusForbidden}
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	w.Write([]byte(xml.Header))
	w.Write(b)
}
