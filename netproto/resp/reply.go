package resp

import (
	"strconv"
	"sync/atomic"
)

// Session is the per-connection state a Handler sees. Calls for one
// session never overlap.
type Session struct {
	// ID is unique among the server's connections (CLIENT ID).
	ID uint64
	// RemoteAddr is the client's address.
	RemoteAddr string
	// Authenticated is set by the Handler once AUTH or HELLO supplied the
	// password.
	Authenticated bool
	// Proto is the protocol version the client chose with HELLO: 2 (the
	// default) or 3.
	Proto int
	// Name is what CLIENT SETNAME or HELLO SETNAME called the connection.
	Name string

	closing atomic.Bool
}

// CloseAfterReply asks the server to close the connection once the
// current reply has been written (QUIT).
func (s *Session) CloseAfterReply() { s.closing.Store(true) }

// CloseRequested reports whether CloseAfterReply was called.
func (s *Session) CloseRequested() bool { return s.closing.Load() }

// The Append functions encode one reply (or an aggregate's header) onto
// dst. Those that differ between RESP2 and RESP3 take the session.

// AppendOK appends +OK.
func AppendOK(dst []byte) []byte { return append(dst, "+OK\r\n"...) }

// AppendSimple appends a simple string; s must not hold CR or LF.
func AppendSimple(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendError appends an error reply; msg starts with its code (ERR,
// WRONGTYPE, ...) and must not hold CR or LF.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return append(dst, '\r', '\n')
}

// AppendInt appends an integer reply.
func AppendInt(dst []byte, v int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, v, 10)
	return append(dst, '\r', '\n')
}

// AppendBulk appends a bulk string.
func AppendBulk(dst []byte, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends a bulk string.
func AppendBulkString(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendBulkInt appends v in decimal as a bulk string.
func AppendBulkInt(dst []byte, v int64) []byte {
	var b [20]byte
	return AppendBulk(dst, strconv.AppendInt(b[:0], v, 10))
}

// AppendNull appends the null reply: $-1 in RESP2, _ in RESP3.
func AppendNull(dst []byte, s *Session) []byte {
	if s.Proto == 3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

// AppendNullArray appends the null array reply: *-1 in RESP2, _ in RESP3.
func AppendNullArray(dst []byte, s *Session) []byte {
	if s.Proto == 3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "*-1\r\n"...)
}

func appendHeader(dst []byte, t byte, n int) []byte {
	dst = append(dst, t)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// AppendArray appends the header of an array of n elements.
func AppendArray(dst []byte, n int) []byte { return appendHeader(dst, '*', n) }

// AppendMap appends the header of a map of n pairs: %n in RESP3, an array
// of 2n elements in RESP2.
func AppendMap(dst []byte, s *Session, n int) []byte {
	if s.Proto == 3 {
		return appendHeader(dst, '%', n)
	}
	return appendHeader(dst, '*', 2*n)
}

// AppendSet appends the header of a set of n elements: ~n in RESP3, an
// array in RESP2.
func AppendSet(dst []byte, s *Session, n int) []byte {
	if s.Proto == 3 {
		return appendHeader(dst, '~', n)
	}
	return appendHeader(dst, '*', n)
}

// AppendVerbatim appends a verbatim text (INFO): =len\r\ntxt:... in RESP3,
// a bulk string in RESP2.
func AppendVerbatim(dst []byte, s *Session, text string) []byte {
	if s.Proto != 3 {
		return AppendBulkString(dst, text)
	}
	dst = appendHeader(dst, '=', len(text)+4)
	dst = append(dst, "txt:"...)
	dst = append(dst, text...)
	return append(dst, '\r', '\n')
}
