package memtier

import "errors"

// ErrInvalidConfig is wrapped by Config.Validate and New; the wrapping message
// names the offending field.
var ErrInvalidConfig = errors.New("memtier: invalid config")
