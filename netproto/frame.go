package netproto

import (
	"encoding/binary"
	"fmt"
)

// Frame header layout, little-endian:
//
//	offset 0  uint16 magic (0xEC0C; bytes 0c ec)
//	offset 2  uint8  version
//	offset 3  uint8  opcode
//	offset 4  uint8  flags
//	offset 5  uint8  reserved, 0
//	offset 6  uint16 reserved, 0
//	offset 8  uint32 request ID
//	offset 12 uint32 body length
const (
	// HeaderSize is the fixed size of a frame header.
	HeaderSize = 16
	// Magic opens every frame.
	Magic uint16 = 0xEC0C
	// Version is the protocol version this codec speaks.
	Version uint8 = 1
)

// Flags are the header's flag bits. Bits not defined here are reserved and
// must be zero.
type Flags uint8

const (
	// FlagResponse marks a server-to-client frame.
	FlagResponse Flags = 1 << 0
	// FlagError marks an error response, whose body is an ErrorBody. It is
	// only valid together with FlagResponse.
	FlagError Flags = 1 << 1

	flagsKnown = FlagResponse | FlagError
)

// Header is a parsed frame header. Magic and the reserved fields are not
// kept: ParseHeader checks them and AppendHeader writes them.
type Header struct {
	Version   uint8
	Opcode    Opcode
	Flags     Flags
	RequestID uint32
	BodyLen   uint32
}

// IsResponse reports whether the frame is a response.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsError reports whether the frame is an error response.
func (h Header) IsError() bool { return h.Flags&FlagError != 0 }

// ParseHeader parses and checks the header at the start of b. It does not
// check the body length against any limit; Decoder does.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrIncomplete
	}
	b = b[:HeaderSize]
	if m := binary.LittleEndian.Uint16(b[0:2]); m != Magic {
		return Header{}, fmt.Errorf("%w: 0x%04x", ErrBadMagic, m)
	}
	h := Header{
		Version:   b[2],
		Opcode:    Opcode(b[3]),
		Flags:     Flags(b[4]),
		RequestID: binary.LittleEndian.Uint32(b[8:12]),
		BodyLen:   binary.LittleEndian.Uint32(b[12:16]),
	}
	if h.Version != Version {
		return Header{}, fmt.Errorf("%w: %d", ErrVersion, h.Version)
	}
	if b[5] != 0 || b[6] != 0 || b[7] != 0 {
		return Header{}, fmt.Errorf("%w: reserved header bytes set", ErrMalformed)
	}
	if h.Flags&^flagsKnown != 0 {
		return Header{}, fmt.Errorf("%w: reserved flags 0x%02x set", ErrMalformed, uint8(h.Flags&^flagsKnown))
	}
	if h.Flags&FlagError != 0 && h.Flags&FlagResponse == 0 {
		return Header{}, fmt.Errorf("%w: error flag on a request", ErrMalformed)
	}
	return h, nil
}

// AppendHeader appends h's encoding, with Magic, to b. Version 0 is written
// as Version.
func AppendHeader(b []byte, h Header) []byte {
	v := h.Version
	if v == 0 {
		v = Version
	}
	b = binary.LittleEndian.AppendUint16(b, Magic)
	b = append(b, v, byte(h.Opcode), byte(h.Flags), 0, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, h.RequestID)
	return binary.LittleEndian.AppendUint32(b, h.BodyLen)
}

// Body is a message body: every request, response and error body type.
type Body interface {
	// AppendBody appends the body's canonical encoding.
	AppendBody(b []byte) []byte
	// DecodeBody decodes b, reusing the receiver's storage; byte slices
	// alias b. Errors wrap ErrMalformed.
	DecodeBody(b []byte) error
}

// AppendFrame appends a frame with the given opcode, flags and request ID
// and body's encoding, filling in the body length.
func AppendFrame(b []byte, op Opcode, flags Flags, id uint32, body Body) []byte {
	start := len(b)
	b = AppendHeader(b, Header{Opcode: op, Flags: flags, RequestID: id})
	b = body.AppendBody(b)
	binary.LittleEndian.PutUint32(b[start+12:start+16], uint32(len(b)-start-HeaderSize))
	return b
}

// AppendRequest appends a request frame.
func AppendRequest(b []byte, op Opcode, id uint32, body Body) []byte {
	return AppendFrame(b, op, 0, id, body)
}

// AppendResponse appends a (successful) response frame.
func AppendResponse(b []byte, op Opcode, id uint32, body Body) []byte {
	return AppendFrame(b, op, FlagResponse, id, body)
}

// AppendError appends an error response frame for request id of opcode op.
func AppendError(b []byte, op Opcode, id uint32, code Code, msg string) []byte {
	e := ErrorBody{Code: code, Message: msg}
	return AppendFrame(b, op, FlagResponse|FlagError, id, &e)
}

// Frame is one complete frame. Body aliases the decoder's input.
type Frame struct {
	Header
	Body []byte
}

// AppendTo appends f's encoding; for a decoded frame it reproduces the input.
func (f Frame) AppendTo(b []byte) []byte {
	h := f.Header
	h.BodyLen = uint32(len(f.Body))
	b = AppendHeader(b, h)
	return append(b, f.Body...)
}

// Limits bound what a peer may send.
type Limits struct {
	// MaxFrameSize bounds a whole frame, header included.
	MaxFrameSize int
	// MaxKeySize bounds one key.
	MaxKeySize int
	// MaxValueSize bounds one value (or set member).
	MaxValueSize int
}

// DefaultLimits returns the limits servers and clients use unless
// configured otherwise: 16 MiB frames, 8 KiB keys, 4 MiB values (the storage defaults).
func DefaultLimits() Limits {
	return Limits{
		MaxFrameSize: 16 << 20,
		MaxKeySize:   8 << 10,
		MaxValueSize: 4 << 20,
	}
}

// Validate reports the first unusable field.
func (l Limits) Validate() error {
	switch {
	case l.MaxFrameSize <= HeaderSize || uint64(l.MaxFrameSize) > HeaderSize+0xFFFFFFFF:
		return fmt.Errorf("%w: MaxFrameSize %d", ErrInvalidLimits, l.MaxFrameSize)
	case l.MaxKeySize <= 0 || l.MaxKeySize >= l.MaxFrameSize:
		return fmt.Errorf("%w: MaxKeySize %d (must be positive and below MaxFrameSize)", ErrInvalidLimits, l.MaxKeySize)
	case l.MaxValueSize <= 0 || l.MaxValueSize >= l.MaxFrameSize:
		return fmt.Errorf("%w: MaxValueSize %d (must be positive and below MaxFrameSize)", ErrInvalidLimits, l.MaxValueSize)
	}
	return nil
}

// CheckKey returns an error wrapping ErrKeyTooLarge if k is over the limit.
func (l Limits) CheckKey(k []byte) error {
	if len(k) > l.MaxKeySize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrKeyTooLarge, len(k), l.MaxKeySize)
	}
	return nil
}

// CheckValue returns an error wrapping ErrValueTooLarge if v is over the
// limit.
func (l Limits) CheckValue(v []byte) error {
	if len(v) > l.MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrValueTooLarge, len(v), l.MaxValueSize)
	}
	return nil
}

// Decoder splits an input stream into frames. It keeps no state between
// calls: the caller accumulates bytes read from the connection, hands them
// to Next or Decode, and drops the bytes they report consumed.
type Decoder struct {
	limits Limits
}

// NewDecoder returns a Decoder enforcing l.MaxFrameSize (the default when
// zero).
func NewDecoder(l Limits) *Decoder {
	if l.MaxFrameSize == 0 {
		l.MaxFrameSize = DefaultLimits().MaxFrameSize
	}
	return &Decoder{limits: l}
}

// Next returns the first frame in buf and the number of bytes it takes.
// When buf holds no complete frame yet it returns n == 0 and a nil error.
// Header errors (ErrBadMagic, ErrVersion, ErrMalformed, ErrFrameTooLarge)
// are reported as soon as the header is in buf, before the body; after one
// the stream cannot be resynced. Frame.Body aliases buf.
func (d *Decoder) Next(buf []byte) (f Frame, n int, err error) {
	if len(buf) < HeaderSize {
		return Frame{}, 0, nil
	}
	h, err := ParseHeader(buf)
	if err != nil {
		return Frame{}, 0, err
	}
	if uint64(h.BodyLen)+HeaderSize > uint64(d.limits.MaxFrameSize) {
		return Frame{}, 0, fmt.Errorf("%w: body length %d, frame limit %d", ErrFrameTooLarge, h.BodyLen, d.limits.MaxFrameSize)
	}
	end := HeaderSize + int(h.BodyLen)
	if len(buf) < end {
		return Frame{}, 0, nil
	}
	return Frame{Header: h, Body: buf[HeaderSize:end:end]}, end, nil
}

// Decode appends every complete frame in buf to dst and returns it with the
// number of bytes they take. On an error it returns the frames before the
// bad one, and n counts only them. It does not allocate when dst has room.
func (d *Decoder) Decode(buf []byte, dst []Frame) (frames []Frame, n int, err error) {
	for {
		f, m, err := d.Next(buf[n:])
		if err != nil || m == 0 {
			return dst, n, err
		}
		dst = append(dst, f)
		n += m
	}
}
