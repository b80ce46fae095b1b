package node

import "errors"

var (
	// ErrUnknownNamespace reports a namespace that is not configured.
	ErrUnknownNamespace = errors.New("node: unknown namespace")
	// ErrInvalidConfig wraps a Config.Validate failure naming the bad field.
	ErrInvalidConfig = errors.New("node: invalid config")
	// ErrClosed is returned by operations after Close.
	ErrClosed = errors.New("node: closed")
)
