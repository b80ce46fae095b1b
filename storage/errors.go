package storage

import "errors"

// Sentinel errors. Check with errors.Is; returned errors wrap them with detail.
var (
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("storage: closed")
	// ErrKeyTooLarge rejects a key longer than Config.MaxKeySize.
	ErrKeyTooLarge = errors.New("storage: key too large")
	// ErrValueTooLarge rejects a value longer than Config.MaxValueSize, or a
	// record (all siblings together) longer than Config.MaxRecordSize.
	ErrValueTooLarge = errors.New("storage: value too large")
	// ErrNamespaceTooLong rejects a namespace name longer than 255 bytes.
	ErrNamespaceTooLong = errors.New("storage: namespace too long")
	// ErrDisk wraps every error from the disk tier.
	ErrDisk = errors.New("storage: disk error")
	// ErrCorrupt reports a stored record that does not decode.
	ErrCorrupt = errors.New("storage: corrupt record")
	// ErrInvalidConfig wraps a Config.Validate failure naming the bad field.
	ErrInvalidConfig = errors.New("storage: invalid config")
)
