package merge

import "errors"

var (
	// ErrWrongType reports an operation the key's strategy does not support,
	// such as INCR on an lww value or PUT on a set.
	ErrWrongType = errors.New("merge: operation not supported by strategy")
	// ErrUnknownStrategy reports a strategy name no Registry entry holds.
	ErrUnknownStrategy = errors.New("merge: unknown strategy")
	// ErrDuplicate reports registering a name that is already taken.
	ErrDuplicate = errors.New("merge: strategy name already registered")
	// ErrInvalidName reports a strategy name that is empty or not of the form
	// [a-z][a-z0-9_.-]*, at most 64 bytes long (or a nil strategy).
	ErrInvalidName = errors.New("merge: invalid strategy name")
	// ErrNotFound reports an operation that needs a live key, such as EXPIRE
	// on an absent, deleted or expired one.
	ErrNotFound = errors.New("merge: key not found")
	// ErrSiblings reports an operation that needs a single value applied to a
	// key holding several concurrent siblings; the client must resolve them
	// by writing back first.
	ErrSiblings = errors.New("merge: key has concurrent siblings")
	// ErrOverflow reports a counter operation whose result would leave the
	// int64 range or wrap one of the counter's internal totals.
	ErrOverflow = errors.New("merge: counter overflow")
	// ErrMalformedState reports a stored object that is not a valid state of
	// the strategy (wrong sibling count, undecodable or non-canonical CRDT
	// state, dots not covered by the clock).
	ErrMalformedState = errors.New("merge: malformed state")
	// ErrInvalidOp reports an operation that can never be applied: a zero
	// coordinator node or a negative expiry.
	ErrInvalidOp = errors.New("merge: invalid operation")
	// ErrStateTooLarge reports a SetObject add that would grow the encoded
	// set beyond the bound it was created with.
	ErrStateTooLarge = errors.New("merge: state too large")
)
