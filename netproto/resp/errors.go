package resp

import "errors"

// Errors. Parse errors wrap ErrProtocol; their text is what the client
// receives after "-ERR Protocol error: ".
var (
	// ErrProtocol reports a request that is not valid RESP.
	ErrProtocol = errors.New("resp: protocol error")
	// ErrTooLarge reports a request over Limits (it also wraps ErrProtocol).
	ErrTooLarge = errors.New("resp: request too large")
	// ErrInvalidConfig reports a Config that fails Validate.
	ErrInvalidConfig = errors.New("resp: invalid server config")
	// ErrServerStarted reports a second Start.
	ErrServerStarted = errors.New("resp: server already started")
	// ErrServerClosed reports Start after Shutdown.
	ErrServerClosed = errors.New("resp: server closed")
)
