package awsjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"
)

// coralNamespace is the namespace AWS's front end uses for the errors it
// raises before a request reaches the service (authentication, routing,
// decoding).
const coralNamespace = "com.amazon.coral.service"

// Error is an AWS error answer. Operations return it to refuse a request;
// the server turns any other error into InternalFailure.
type Error struct {
	Code       string // the error shape's name, e.g. "InvalidInstanceId"
	Message    string
	HTTPStatus int // 400 when zero

	// namespace overrides the service's namespace for errors the front end
	// raises (the SDK matches on the name after '#' either way).
	namespace string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a client error (HTTP 400) with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), HTTPStatus: http.StatusBadRequest}
}

func frontEndError(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), HTTPStatus: status, namespace: coralNamespace}
}

// Decode unmarshals an operation's input into v. A body whose values have
// the wrong JSON types is refused with SerializationException, naming the
// field, as AWS does.
func Decode(input json.RawMessage, v any) error {
	err := json.Unmarshal(input, v)
	if err == nil {
		return nil
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return frontEndError(http.StatusBadRequest, "SerializationException",
			"Unexpected JSON %s for field %s (expected %s).", typeErr.Value, typeErr.Field, shapeKind(typeErr.Type))
	}
	return frontEndError(http.StatusBadRequest, "SerializationException", "The request body is not valid JSON for this operation: %v.", err)
}

// shapeKind names a Go type the way the API reference names shapes, so the
// message speaks the client's language rather than the server's.
func shapeKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map:
		return "a map"
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return "a timestamp"
		}
		return "a structure"
	}
	return "a value"
}
