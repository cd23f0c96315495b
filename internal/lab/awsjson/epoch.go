package awsjson

import (
	"fmt"
	"strconv"
	"time"
)

// Epoch is a timestamp as the JSON 1.1 protocol sends it: seconds since
// the Unix epoch, with milliseconds as a fraction.
type Epoch time.Time

// MarshalJSON implements json.Marshaler.
func (t Epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Epoch) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("timestamp %s is not a number of seconds", b)
	}
	*t = Epoch(time.UnixMilli(int64(f * 1000)).UTC())
	return nil
}

// EpochPtr returns t as an Epoch, or nil for the zero time, which the
// answers leave out.
func EpochPtr(t time.Time) *Epoch {
	if t.IsZero() {
		return nil
	}
	e := Epoch(t)
	return &e
}
