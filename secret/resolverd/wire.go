package resolverd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/rssh/rssh/secret"
)

// The wire: one request and one response per connection, each a frame of
// a 4-byte big-endian length and a payload that starts with magic.
//
//	request  = magic op:u8 auth:[32] n:u16 n×(len:u16 ref)
//	response = magic 0:u8 n:u16 n×(len:u32 value)                    (values)
//	         | magic 1:u8 kind:u8 retryIn:u32s n:u16 n×(len:u16 ref)
//	           msgLen:u16 msg hintLen:u16 hint                        (error)
//	         | magic 2:u8 pid:u32                                     (pong)
//
// Every length is checked against what is left of the frame and against
// its cap before anything is allocated.
const (
	magic = "RSR1"

	opResolve = 'R'
	opPing    = 'P'

	maxRequest  = 1 << 20  // a request frame
	maxResponse = 64 << 20 // a response frame: values (documents) may be large
	maxRefs     = 1024
	maxRefLen   = 1024
	maxMsgLen   = 4096
	authLen     = 32
)

type request struct {
	op   byte
	auth [authLen]byte
	refs []string
}

type response struct {
	status byte // 0 values, 1 error, 2 pong
	values [][]byte
	err    *secret.Error
	pid    uint32
}

var errFrame = errors.New("malformed message")

// Kinds on the wire, in a fixed order (0 is "unknown": ErrBackend).
var wireKinds = []error{nil, secret.ErrNotFound, secret.ErrAuth, secret.ErrRateLimited, secret.ErrTransient, secret.ErrBackend, secret.ErrNoBackend}

func kindByte(k error) byte {
	for i, w := range wireKinds {
		if w != nil && w == k {
			return byte(i)
		}
	}
	return 0
}

func kindOf(b byte) error {
	if int(b) < len(wireKinds) && wireKinds[b] != nil {
		return wireKinds[b]
	}
	return secret.ErrBackend
}

func encodeRequest(r *request) ([]byte, error) {
	if len(r.refs) > maxRefs {
		return nil, fmt.Errorf("%d references in one batch: at most %d", len(r.refs), maxRefs)
	}
	b := append([]byte(magic), r.op)
	b = append(b, r.auth[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.refs)))
	for _, ref := range r.refs {
		if len(ref) > maxRefLen {
			return nil, fmt.Errorf("a reference of %d bytes: at most %d", len(ref), maxRefLen)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(ref)))
		b = append(b, ref...)
	}
	return b, nil
}

// reader walks a payload; every read is bounds-checked.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() int {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// str16 reads a u16-length string capped at max.
func (r *reader) str16(max int) string {
	n := r.u16()
	if n > max {
		r.bad = true
		return ""
	}
	return string(r.take(n))
}

func (r *reader) magic() bool { return string(r.take(len(magic))) == magic && !r.bad }

func decodeRequest(p []byte) (*request, error) {
	r := &reader{b: p}
	if !r.magic() {
		return nil, errFrame
	}
	q := &request{op: r.u8()}
	copy(q.auth[:], r.take(authLen))
	if q.op != opResolve && q.op != opPing {
		return nil, errFrame
	}
	n := r.u16()
	if n > maxRefs || n*2 > len(r.b) {
		return nil, errFrame
	}
	q.refs = make([]string, 0, n)
	for i := 0; i < n && !r.bad; i++ {
		q.refs = append(q.refs, r.str16(maxRefLen))
	}
	if r.bad || len(r.b) != 0 {
		return nil, errFrame
	}
	return q, nil
}

func encodeResponse(s *response) ([]byte, error) {
	b := append([]byte(magic), s.status)
	switch s.status {
	case 0:
		if len(s.values) > maxRefs {
			return nil, fmt.Errorf("%d values: at most %d", len(s.values), maxRefs)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(s.values)))
		for _, v := range s.values {
			if len(b)+4+len(v) > maxResponse {
				return nil, fmt.Errorf("values larger than %d bytes in all", maxResponse)
			}
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	case 1:
		e := s.err
		b = append(b, kindByte(e.Kind))
		b = binary.BigEndian.AppendUint32(b, uint32(min(e.RetryIn/time.Second, 1<<31)))
		refs := e.Refs
		if len(refs) > maxRefs {
			refs = refs[:maxRefs]
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(refs)))
		for _, ref := range refs {
			b = appendStr16(b, ref, maxRefLen)
		}
		b = appendStr16(b, e.Msg, maxMsgLen)
		b = appendStr16(b, e.Hint, maxMsgLen)
	case 2:
		b = binary.BigEndian.AppendUint32(b, s.pid)
	default:
		return nil, fmt.Errorf("unknown response status %d", s.status)
	}
	return b, nil
}

func appendStr16(b []byte, s string, max int) []byte {
	if len(s) > max {
		s = s[:max]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func decodeResponse(p []byte) (*response, error) {
	r := &reader{b: p}
	if !r.magic() {
		return nil, errFrame
	}
	s := &response{status: r.u8()}
	switch s.status {
	case 0:
		n := r.u16()
		if n > maxRefs || n*4 > len(r.b) {
			return nil, errFrame
		}
		s.values = make([][]byte, 0, n)
		for i := 0; i < n && !r.bad; i++ {
			l := r.u32()
			if uint64(l) > uint64(len(r.b)) {
				return nil, errFrame
			}
			v := r.take(int(l))
			s.values = append(s.values, append([]byte(nil), v...))
		}
	case 1:
		e := &secret.Error{Kind: kindOf(r.u8())}
		e.RetryIn = time.Duration(r.u32()) * time.Second
		n := r.u16()
		if n > maxRefs || n*2 > len(r.b) {
			return nil, errFrame
		}
		for i := 0; i < n && !r.bad; i++ {
			e.Refs = append(e.Refs, r.str16(maxRefLen))
		}
		e.Msg = r.str16(maxMsgLen)
		e.Hint = r.str16(maxMsgLen)
		s.err = e
	case 2:
		s.pid = r.u32()
	default:
		return nil, errFrame
	}
	if r.bad || len(r.b) != 0 {
		return nil, errFrame
	}
	return s, nil
}

// writeFrame writes one length-prefixed payload.
func writeFrame(w io.Writer, p []byte) error {
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(p)), uint32(len(p)))
	b = append(b, p...)
	_, err := w.Write(b)
	clear(b)
	return err
}

// readFrame reads one payload of at most max bytes; the length is checked
// before the buffer is made.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: a frame of %d bytes (at most %d)", errFrame, n, max)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	return p, nil
}
