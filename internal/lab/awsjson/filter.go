package awsjson

import "time"

// InvokedFilter reads an InvokedAfter or InvokedBefore filter (key) whose
// value is an ISO 8601 time, and returns whether a time is on the
// filter's side of it, the bound included. A value that is not such a
// time is InvalidFilterKey, the only filter error SSM's listings declare.
func InvokedFilter(key, value string) (func(time.Time) bool, error) {
	bound, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return nil, Errorf("InvalidFilterKey", "Filter %s needs an ISO 8601 timestamp such as 2026-01-24T00:00:00Z, not %q.", key, clip(value))
	}
	if key == "InvokedAfter" {
		return func(t time.Time) bool { return !t.Before(bound) }, nil
	}
	return func(t time.Time) bool { return !t.After(bound) }, nil
}
