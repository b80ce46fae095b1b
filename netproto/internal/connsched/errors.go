package connsched

import "errors"

// Errors. The servers map them to their own sentinels.
var (
	// ErrInvalidConfig reports a Config or Protocol New cannot use.
	ErrInvalidConfig = errors.New("connsched: invalid config")
	// ErrStarted reports a second Start.
	ErrStarted = errors.New("connsched: already started")
	// ErrClosed reports Start after Shutdown.
	ErrClosed = errors.New("connsched: closed")
)
