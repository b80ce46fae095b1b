package antientropy

import "errors"

var (
	// ErrMalformed reports a message that does not decode or does not fit
	// the exchange (wrong shape, bad node index, inconsistent lengths).
	ErrMalformed = errors.New("antientropy: malformed message")
	// ErrTimeout reports an exchange abandoned after its retries ran out.
	ErrTimeout = errors.New("antientropy: exchange timed out")
	// ErrAborted reports an exchange the other side aborted.
	ErrAborted = errors.New("antientropy: exchange aborted by peer")
	// ErrInvalidConfig reports a Config that Validate rejects.
	ErrInvalidConfig = errors.New("antientropy: invalid config")
)
