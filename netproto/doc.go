// Package netproto is ecache's client wire codec: the framing, opcodes,
// message bodies and error codes of the binary protocol that
// docs/protocol.md specifies. It does no I/O: a server or client feeds bytes
// read from a connection to a Decoder and writes what the Append functions
// produce.
//
// A frame is a fixed 16-byte little-endian header followed by a MessagePack
// body. Bodies are arrays of positional fields, encoded deterministically
// (shortest forms, via internal/msgp), so every message has one canonical
// encoding; the golden vectors in testdata/golden pin it. Decoders accept
// any valid MessagePack encoding of a field and ignore fields appended by
// newer versions.
//
// Invariants:
//   - Decoding never panics and never allocates more than the input size,
//     whatever the input.
//   - Byte slices in decoded frames and bodies alias the input buffer: they
//     are valid only until the caller reuses it.
//   - Decoding a GET frame and body into a reused struct does not allocate.
//   - Opcodes and codes are append-only: a value, once released, keeps its
//     meaning forever.
package netproto
