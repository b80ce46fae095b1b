package client

import (
	"errors"

	"github.com/ecachedb/ecache/netproto"
)

// Errors for the server's codes (docs/protocol.md §5). A *ServerError
// matches the sentinel for its code with errors.Is; the client returns the
// same sentinels, wrapped, when it detects a problem before sending (a key
// over the size limit, say), so one errors.Is check covers both.
var (
	// ErrNotFound reports an absent or expired key. Get returns it together
	// with an Item that may carry the context of a deletion.
	ErrNotFound = errors.New("client: not found")
	// ErrWrongType reports an operation the namespace's strategy does not
	// support (GET on a counter namespace, INCR on a value namespace).
	ErrWrongType = errors.New("client: wrong type")
	// ErrUnknownNamespace reports a namespace the server does not configure.
	ErrUnknownNamespace = errors.New("client: unknown namespace")
	// ErrKeyTooLarge reports a key over the key size limit.
	ErrKeyTooLarge = errors.New("client: key too large")
	// ErrValueTooLarge reports a value or set member over the value size
	// limit.
	ErrValueTooLarge = errors.New("client: value too large")
	// ErrMalformed reports a frame or body that could not be parsed, by the
	// server or by the client.
	ErrMalformed = errors.New("client: malformed message")
	// ErrFrameTooLarge reports a request or response frame over the frame
	// size limit.
	ErrFrameTooLarge = errors.New("client: frame too large")
	// ErrUnsupportedVersion reports a protocol version the peer does not
	// speak.
	ErrUnsupportedVersion = errors.New("client: unsupported protocol version")
	// ErrBusy reports an overloaded server; retry later with backoff.
	ErrBusy = errors.New("client: server busy")
	// ErrInternal reports a server-side failure.
	ErrInternal = errors.New("client: internal server error")
	// ErrUnauthenticated reports a missing or wrong password.
	ErrUnauthenticated = errors.New("client: unauthenticated")
	// ErrUnknownOpcode reports an operation the server does not know (an
	// older server).
	ErrUnknownOpcode = errors.New("client: unknown opcode")
	// ErrOverflow reports an INCR or DECR that would take a counter outside
	// the int64 range; the counter is unchanged.
	ErrOverflow = errors.New("client: counter overflow")
	// ErrSiblings: the operation (EXPIRE) needs a single value but the key
	// has concurrent siblings; read them, write the resolved value back
	// with the context, then retry. Nothing was changed.
	ErrSiblings = errors.New("client: key has concurrent siblings; resolve them first")
)

// Errors of the client itself.
var (
	// ErrClosed reports a call on, or pending during, a closed Client.
	ErrClosed = errors.New("client: closed")
	// ErrNoNodes reports that no configured node could be reached; the
	// error wrapping it names every address tried and why it failed.
	ErrNoNodes = errors.New("client: no reachable node")
	// ErrConnLost reports a connection that broke while the call was in
	// flight: the request may or may not have been executed.
	ErrConnLost = errors.New("client: connection lost")
	// ErrInvalidArgument reports an argument the client refuses before
	// sending (a negative TTL or W).
	ErrInvalidArgument = errors.New("client: invalid argument")
)

// ServerError is an error response from the server, or an error status in a
// successful response (a per-key failure of MGet or MPut). errors.Is
// matches it against the sentinel for its code.
type ServerError struct {
	Code    netproto.Code
	Message string
}

func (e *ServerError) Error() string {
	if e.Message == "" {
		return "client: server error: " + e.Code.String()
	}
	return "client: server error: " + e.Code.String() + ": " + e.Message
}

// Is reports whether target is the sentinel error for e's code.
func (e *ServerError) Is(target error) bool {
	s := sentinelFor(e.Code)
	return s != nil && s == target
}

// sentinelFor maps a wire code to its sentinel error, nil for the success
// statuses and for codes this client does not know.
func sentinelFor(c netproto.Code) error {
	switch c {
	case netproto.CodeNotFound:
		return ErrNotFound
	case netproto.CodeWrongType:
		return ErrWrongType
	case netproto.CodeUnknownNamespace:
		return ErrUnknownNamespace
	case netproto.CodeKeyTooLarge:
		return ErrKeyTooLarge
	case netproto.CodeValueTooLarge:
		return ErrValueTooLarge
	case netproto.CodeMalformed:
		return ErrMalformed
	case netproto.CodeFrameTooLarge:
		return ErrFrameTooLarge
	case netproto.CodeUnsupportedVersion:
		return ErrUnsupportedVersion
	case netproto.CodeBusy:
		return ErrBusy
	case netproto.CodeInternal:
		return ErrInternal
	case netproto.CodeUnauthenticated:
		return ErrUnauthenticated
	case netproto.CodeUnknownOpcode:
		return ErrUnknownOpcode
	case netproto.CodeOverflow:
		return ErrOverflow
	}
	return nil
}

// statusError returns the error for a non-success status inside a
// successful response body.
func statusError(c netproto.Code) error {
	switch c {
	case netproto.CodeNotFound:
		return ErrNotFound
	case netproto.CodeSiblings:
		return ErrSiblings
	}
	return &ServerError{Code: c}
}
