package access

import "time"

// CheckReason, CheckTargets and CheckDuration are the core's own rules for a
// request's inputs, exported so that the provider refuses a bad request at
// plan time with the same words Grant would use at apply time.
func CheckReason(reason string) error { return checkReason(reason) }

// CheckTargets: see CheckReason.
func CheckTargets(ids []string) error { return checkTargets(ids) }

// CheckDuration: see CheckReason. Zero means the default and is fine.
func CheckDuration(d time.Duration) error {
	_, err := checkDuration(d)
	return err
}
