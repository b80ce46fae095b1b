package vclock

import "errors"

// ErrMalformed reports bytes that do not decode to a valid clock, context or
// object; the wrapped message says what is wrong.
var ErrMalformed = errors.New("vclock: malformed encoding")
