package resolverd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rssh/rssh/secret"
)

func TestWireRoundTrip(t *testing.T) {
	req := &request{op: opResolve, refs: []string{"op://a/b/c", "op://SA - x/GitHub CLI Token/credential", ""}}
	req.auth[0], req.auth[31] = 1, 2
	p, err := encodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRequest(p)
	if err != nil || !reflect.DeepEqual(got, req) {
		t.Fatalf("request: %+v %v", got, err)
	}
	nasty := []byte("$(touch X)`id`'\"%\n\x00é")
	for _, resp := range []*response{
		{status: 0, values: [][]byte{nasty, {}, bytes.Repeat([]byte("v"), 70000)}},
		{status: 1, err: &secret.Error{Kind: secret.ErrRateLimited, RetryIn: 58 * time.Minute, Refs: []string{"op://a/b/c"}, Msg: "rate limited", Hint: "wait"}},
		{status: 1, err: &secret.Error{Kind: secret.ErrNoBackend, Msg: "m"}},
		{status: 2, pid: 4242},
	} {
		p, err := encodeResponse(resp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeResponse(p)
		if err != nil {
			t.Fatalf("%+v: %v", resp, err)
		}
		if resp.status == 0 && len(got.values[1]) == 0 {
			got.values[1] = []byte{} // nil and empty are one value
		}
		if !reflect.DeepEqual(got, resp) {
			t.Errorf("response: got %+v, want %+v", got, resp)
		}
		if resp.status == 1 && (!errors.Is(got.err, resp.err.Kind) || secret.Retryable(got.err) != secret.Retryable(resp.err)) {
			t.Errorf("kind lost: %v", got.err)
		}
	}
}

// Lengths are checked against their caps and against what is left of the
// frame before anything is allocated.
func TestWireBounds(t *testing.T) {
	if _, err := encodeRequest(&request{op: opResolve, refs: make([]string, maxRefs+1)}); err == nil {
		t.Error("too many refs encoded")
	}
	if _, err := encodeRequest(&request{op: opResolve, refs: []string{strings.Repeat("x", maxRefLen+1)}}); err == nil {
		t.Error("an oversize ref encoded")
	}
	head := append([]byte(magic), opResolve)
	head = append(head, make([]byte, authLen)...)
	for name, p := range map[string][]byte{
		"empty":         nil,
		"bad magic":     []byte("XXXX"),
		"bad op":        append(append([]byte(magic), 'Z'), make([]byte, authLen+2)...),
		"short auth":    append([]byte(magic), opResolve, 1, 2),
		"count > left":  binary.BigEndian.AppendUint16(bytes.Clone(head), 1000),
		"count > max":   append(binary.BigEndian.AppendUint16(bytes.Clone(head), maxRefs+1), make([]byte, 2*(maxRefs+1))...),
		"ref > max":     append(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(bytes.Clone(head), 1), maxRefLen+1), make([]byte, maxRefLen+1)...),
		"ref > left":    binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(bytes.Clone(head), 1), 10),
		"trailing byte": append(binary.BigEndian.AppendUint16(bytes.Clone(head), 0), 0),
	} {
		if _, err := decodeRequest(p); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	vals := append([]byte(magic), 0)
	vals = binary.BigEndian.AppendUint16(vals, 1)
	vals = binary.BigEndian.AppendUint32(vals, 0xffffffff)
	if _, err := decodeResponse(vals); err == nil {
		t.Error("a value longer than the frame decoded")
	}
	var frame bytes.Buffer
	frame.Write([]byte{0xff, 0xff, 0xff, 0xff})
	if _, err := readFrame(&frame, maxRequest); !errors.Is(err, errFrame) {
		t.Errorf("a 4 GiB frame: %v", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	p, _ := encodeRequest(&request{op: opResolve, refs: []string{"op://a/b/c", "op://d/e/f/g?attribute=otp"}})
	f.Add(p)
	p, _ = encodeRequest(&request{op: opPing})
	f.Add(p)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeRequest(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		p, err := encodeRequest(req)
		if err != nil || !bytes.Equal(p, b) {
			t.Fatalf("re-encode: %v %x != %x", err, p, b)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, r := range []*response{
		{status: 0, values: [][]byte{[]byte("v"), {}}},
		{status: 1, err: &secret.Error{Kind: secret.ErrTransient, RetryIn: time.Second, Refs: []string{"op://a/b/c"}, Msg: "m", Hint: "h"}},
		{status: 2, pid: 1},
	} {
		p, _ := encodeResponse(r)
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := decodeResponse(b)
		if err != nil {
			return
		}
		p, err := encodeResponse(resp)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := decodeResponse(p)
		if err != nil || again.status != resp.status || len(again.values) != len(resp.values) {
			t.Fatalf("round trip: %+v %v", again, err)
		}
	})
}
