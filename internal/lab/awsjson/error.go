package awsjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
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
	// cause is what the error was made from, such as the *sigv4.Error of a
	// refused signature, for services that answer it in their own terms.
	cause error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns what the error was made from, if anything.
func (e *Error) Unwrap() error { return e.cause }

// Errorf returns a client error (HTTP 400) with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), HTTPStatus: http.StatusBadRequest}
}

func frontEndError(status int, code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), HTTPStatus: status, namespace: coralNamespace}
}

// Decode unmarshals an operation's input into v. Member names match
// exactly, as on AWS: encoding/json would also fill InstanceIds from
// "instanceids", which AWS ignores. A body whose values have the wrong JSON
// types is refused with SerializationException, naming the field, as AWS
// does.
func Decode(input json.RawMessage, v any) error {
	err := json.Unmarshal(exactMembers(input, reflect.TypeOf(v)), v)
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

// exactMembers drops the object members of raw whose names match a field
// of t only when case is ignored, at every depth, so that encoding/json's
// case-insensitive matching cannot accept what AWS would ignore. Input
// that does not parse is returned as it is, for Unmarshal to report.
func exactMembers(raw json.RawMessage, t reflect.Type) json.RawMessage {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return raw
		}
		fields := jsonFields(t)
		kept := make(map[string]json.RawMessage, len(obj))
		for name, value := range obj {
			if f, ok := fields[name]; ok {
				kept[name] = exactMembers(value, f.Type)
			}
		}
		out, err := json.Marshal(kept)
		if err != nil {
			return raw
		}
		return out
	case reflect.Slice, reflect.Array:
		var list []json.RawMessage
		if json.Unmarshal(raw, &list) != nil || list == nil {
			return raw
		}
		for i := range list {
			list[i] = exactMembers(list[i], t.Elem())
		}
		out, _ := json.Marshal(list)
		return out
	case reflect.Map:
		var obj map[string]json.RawMessage
		if json.Unmarshal(raw, &obj) != nil || obj == nil {
			return raw
		}
		for k, value := range obj {
			obj[k] = exactMembers(value, t.Elem())
		}
		out, _ := json.Marshal(obj)
		return out
	}
	return raw
}

// jsonFields maps the member names encoding/json uses for a struct's
// exported fields to the fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = f
	}
	return fields
}
