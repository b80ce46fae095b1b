package netproto

import (
	"errors"
	"strconv"
)

// Framing errors. A connection that produced any of them cannot be resynced:
// the server answers with an error frame carrying the matching Code and
// closes the connection.
var (
	// ErrBadMagic reports a header that does not start with Magic.
	ErrBadMagic = errors.New("netproto: bad magic")
	// ErrVersion reports a header with a protocol version this codec does
	// not speak.
	ErrVersion = errors.New("netproto: unsupported protocol version")
	// ErrFrameTooLarge reports a header whose body length puts the frame
	// over Limits.MaxFrameSize. It is detected before the body arrives.
	ErrFrameTooLarge = errors.New("netproto: frame too large")
	// ErrMalformed reports a header with reserved bits set, or a body that
	// is not the expected MessagePack array.
	ErrMalformed = errors.New("netproto: malformed message")
	// ErrIncomplete reports fewer than HeaderSize bytes given to ParseHeader.
	ErrIncomplete = errors.New("netproto: incomplete header")
)

// Request errors: the frame was well formed, the request is not acceptable.
// The connection stays open.
var (
	// ErrUnknownOpcode reports an opcode this codec has no body types for.
	ErrUnknownOpcode = errors.New("netproto: unknown opcode")
	// ErrKeyTooLarge reports a key longer than Limits.MaxKeySize.
	ErrKeyTooLarge = errors.New("netproto: key too large")
	// ErrValueTooLarge reports a value longer than Limits.MaxValueSize.
	ErrValueTooLarge = errors.New("netproto: value too large")
	// ErrInvalidLimits reports a Limits that fails Validate.
	ErrInvalidLimits = errors.New("netproto: invalid limits")
)

// Code is a status or error code on the wire: the Status field of response
// bodies and the Code field of error bodies. CodeOK, CodeNotFound and
// CodeSiblings are statuses of successful responses; the others are errors.
//
// The values are sent to clients in other languages: the list is
// append-only. Never renumber or reuse a value; add new codes at the end.
type Code uint16

const (
	CodeOK                 Code = 0  // success
	CodeNotFound           Code = 1  // the key is absent or expired
	CodeSiblings           Code = 2  // success, with more than one concurrent value
	CodeWrongType          Code = 3  // the namespace's strategy does not support the operation
	CodeUnknownNamespace   Code = 4  // the namespace is not configured
	CodeKeyTooLarge        Code = 5  // key over the server's key size limit
	CodeValueTooLarge      Code = 6  // value over the server's value size limit
	CodeMalformed          Code = 7  // unparseable header or body (closes the connection when framing is lost)
	CodeFrameTooLarge      Code = 8  // frame over the server's frame size limit (closes the connection)
	CodeUnsupportedVersion Code = 9  // protocol version not spoken (closes the connection)
	CodeBusy               Code = 10 // overloaded; retry later
	CodeInternal           Code = 11 // server-side failure
	CodeUnauthenticated    Code = 12 // a password is configured and HELLO has not supplied it
	CodeUnknownOpcode      Code = 13 // opcode not known to the server
	CodeOverflow           Code = 14 // a counter would leave the int64 range
)

var codeNames = [...]string{
	CodeOK:                 "ok",
	CodeNotFound:           "not found",
	CodeSiblings:           "siblings",
	CodeWrongType:          "wrong type",
	CodeUnknownNamespace:   "unknown namespace",
	CodeKeyTooLarge:        "key too large",
	CodeValueTooLarge:      "value too large",
	CodeMalformed:          "malformed",
	CodeFrameTooLarge:      "frame too large",
	CodeUnsupportedVersion: "unsupported version",
	CodeBusy:               "busy",
	CodeInternal:           "internal",
	CodeUnauthenticated:    "unauthenticated",
	CodeUnknownOpcode:      "unknown opcode",
	CodeOverflow:           "overflow",
}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "Code(" + strconv.Itoa(int(c)) + ")"
}

// CodeOf returns the code for err, matching this package's sentinel errors
// with errors.Is; errors it does not know map to CodeInternal, nil to
// CodeOK. Servers map errors of other packages (unknown namespace, wrong
// type) themselves.
func CodeOf(err error) Code {
	switch {
	case err == nil:
		return CodeOK
	case errors.Is(err, ErrBadMagic), errors.Is(err, ErrMalformed), errors.Is(err, ErrIncomplete):
		return CodeMalformed
	case errors.Is(err, ErrVersion):
		return CodeUnsupportedVersion
	case errors.Is(err, ErrFrameTooLarge):
		return CodeFrameTooLarge
	case errors.Is(err, ErrUnknownOpcode):
		return CodeUnknownOpcode
	case errors.Is(err, ErrKeyTooLarge):
		return CodeKeyTooLarge
	case errors.Is(err, ErrValueTooLarge):
		return CodeValueTooLarge
	}
	return CodeInternal
}
