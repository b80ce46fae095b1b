package resp

import (
	"bytes"
	"fmt"
)

// Limits bound what one command may hold. A command over them is a
// protocol error: the client gets one error reply and its connection
// closes.
type Limits struct {
	// MaxArgs bounds the arguments of one command, its name included.
	MaxArgs int
	// MaxBulk bounds one argument.
	MaxBulk int
	// MaxRequest bounds a whole command in bytes.
	MaxRequest int
	// MaxInline bounds the line of an inline command (and the header
	// lines of a multibulk one).
	MaxInline int
}

// DefaultLimits returns the limits used unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{MaxArgs: 64 << 10, MaxBulk: 4 << 20, MaxRequest: 16 << 20, MaxInline: 64 << 10}
}

// Validate reports the first unusable field.
func (l Limits) Validate() error {
	switch {
	case l.MaxArgs <= 0:
		return fmt.Errorf("%w: Limits.MaxArgs %d must be positive", ErrInvalidConfig, l.MaxArgs)
	case l.MaxBulk <= 0:
		return fmt.Errorf("%w: Limits.MaxBulk %d must be positive", ErrInvalidConfig, l.MaxBulk)
	case l.MaxRequest < l.MaxBulk:
		return fmt.Errorf("%w: Limits.MaxRequest %d must be at least MaxBulk", ErrInvalidConfig, l.MaxRequest)
	case l.MaxInline <= 0:
		return fmt.Errorf("%w: Limits.MaxInline %d must be positive", ErrInvalidConfig, l.MaxInline)
	}
	return nil
}

func protoErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, a...)...)
}

func tooLarge(format string, a ...any) error {
	return fmt.Errorf("%w: %w: "+format, append([]any{ErrProtocol, ErrTooLarge}, a...)...)
}

// Parse parses the command at the start of buf: a RESP multibulk request
// or an inline command line. It returns the arguments appended to args[:0]
// (aliasing buf) and the bytes consumed. When the command is not complete
// yet it returns n == 0 and need, a lower bound on the length buf must
// reach. A request holding no command (an empty line, "*0") returns no
// arguments with n > 0.
func Parse(buf []byte, args [][]byte, l Limits) (out [][]byte, n, need int, err error) {
	out = args[:0]
	if len(buf) == 0 {
		return out, 0, 1, nil
	}
	if buf[0] != '*' {
		return parseInline(buf, out, l)
	}
	count, pos, err := parseLine(buf, 1, l, "multibulk length")
	if err != nil || pos == 0 {
		return out, 0, len(buf) + 1, err
	}
	if count <= 0 {
		return out, pos, 0, nil
	}
	if count > int64(l.MaxArgs) {
		return out, 0, 0, tooLarge("invalid multibulk length %d (limit %d arguments)", count, l.MaxArgs)
	}
	for range count {
		if pos >= len(buf) {
			return out, 0, pos + 1, nil
		}
		if buf[pos] != '$' {
			return out, 0, 0, protoErr("expected '$', got '%c'", buf[pos])
		}
		size, next, err := parseLine(buf, pos+1, l, "bulk length")
		if err != nil {
			return out, 0, 0, err
		}
		if next == 0 {
			return out, 0, len(buf) + 1, nil
		}
		if size < 0 || size > int64(l.MaxBulk) {
			if size < 0 {
				return out, 0, 0, protoErr("invalid bulk length %d", size)
			}
			return out, 0, 0, tooLarge("invalid bulk length %d (limit %d bytes)", size, l.MaxBulk)
		}
		end := next + int(size) + 2
		if end > l.MaxRequest {
			return out, 0, 0, tooLarge("request over %d bytes", l.MaxRequest)
		}
		if end > len(buf) {
			return out, 0, end, nil
		}
		if buf[end-2] != '\r' || buf[end-1] != '\n' {
			return out, 0, 0, protoErr("bulk string not terminated by CRLF")
		}
		out = append(out, buf[next:end-2])
		pos = end
	}
	return out, pos, 0, nil
}

// parseLine parses the integer of a header line starting at buf[from]
// (after its type byte) and returns it with the position after its CRLF,
// or pos == 0 when the line is not complete.
func parseLine(buf []byte, from int, l Limits, what string) (v int64, pos int, err error) {
	i := bytes.IndexByte(buf[from:], '\n')
	if i < 0 {
		if len(buf)-from > 32 {
			return 0, 0, protoErr("too big %s line", what)
		}
		return 0, 0, nil
	}
	line := buf[from : from+i]
	if len(line) == 0 || line[len(line)-1] != '\r' {
		return 0, 0, protoErr("invalid %s: line not terminated by CRLF", what)
	}
	line = line[:len(line)-1]
	v, ok := parseInt(line)
	if !ok {
		return 0, 0, protoErr("invalid %s", what)
	}
	return v, from + i + 1, nil
}

// parseInt parses a decimal int64 with an optional minus sign.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	neg := b[0] == '-'
	if neg {
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (1<<64-1-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	if neg {
		if u > 1<<63 {
			return 0, false
		}
		return -int64(u), true
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}

// ParseInt parses a command argument as a Redis integer.
func ParseInt(b []byte) (int64, bool) {
	if len(b) > 1 && (b[0] == '0' || b[0] == '+') {
		return 0, false
	}
	if len(b) >= 2 && b[0] == '-' && b[1] == '0' {
		return 0, false
	}
	return parseInt(b)
}

// parseInline splits a telnet-style command line into arguments: blanks
// separate them, and "double" (with \n, \r, \t, \", \\, \xHH escapes) or
// 'single' quotes group them, as redis-server's sdssplitargs does. Quoted
// arguments are unescaped into new memory: buf is left as it is, because
// the server may parse the same bytes again on a worker.
func parseInline(buf []byte, out [][]byte, l Limits) ([][]byte, int, int, error) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		if len(buf) > l.MaxInline {
			return out, 0, 0, tooLarge("too big inline request")
		}
		return out, 0, len(buf) + 1, nil
	}
	if nl > l.MaxInline {
		return out, 0, 0, tooLarge("too big inline request")
	}
	line := buf[:nl]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	i := 0
	for {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		if len(out) == l.MaxArgs {
			return out, 0, 0, tooLarge("too many arguments (limit %d)", l.MaxArgs)
		}
		var arg []byte
		var err error
		switch line[i] {
		case '"', '\'':
			arg, i, err = unquote(line, i)
			if err != nil {
				return out, 0, 0, err
			}
		default:
			start := i
			for i < len(line) && !isBlank(line[i]) {
				i++
			}
			arg = line[start:i]
		}
		out = append(out, arg)
	}
	return out, nl + 1, 0, nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' }

// unquote unescapes the quoted argument starting at line[i] and returns it
// with the position after it.
func unquote(line []byte, i int) ([]byte, int, error) {
	q := line[i]
	arg := []byte{}
	for r := i + 1; r < len(line); r++ {
		c := line[r]
		switch {
		case c == q:
			if r+1 < len(line) && !isBlank(line[r+1]) {
				return nil, 0, protoErr("unbalanced quotes in request")
			}
			return arg, r + 1, nil
		case c == '\\' && r+1 < len(line):
			r++
			c = line[r]
			if q == '\'' {
				if c != '\'' {
					arg = append(arg, '\\')
				}
			} else {
				switch c {
				case 'n':
					c = '\n'
				case 'r':
					c = '\r'
				case 't':
					c = '\t'
				case 'b':
					c = '\b'
				case 'a':
					c = '\a'
				case 'x':
					if r+2 < len(line) && isHex(line[r+1]) && isHex(line[r+2]) {
						c = unhex(line[r+1])<<4 | unhex(line[r+2])
						r += 2
					}
				}
			}
		}
		arg = append(arg, c)
	}
	return nil, 0, protoErr("unbalanced quotes in request")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}
