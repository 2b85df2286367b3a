package mux

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// TestWireRoundTrip: what the client encodes, the master decodes to the
// same request, byte for byte as mux.c lays it out.
func TestWireRoundTrip(t *testing.T) {
	s := &SessionRequest{ID: 7, TTY: true, Agent: true, EscapeChar: '~', Term: "xterm", Command: "ls -l",
		Env: []string{"A=1", "B="}}
	r, err := DecodeRequest(encodeSession(s))
	if err != nil || !reflect.DeepEqual(r.Session, s) || r.ID != 7 {
		t.Fatalf("session: %+v, %v", r, err)
	}
	f := Forward{Type: FwdRemote, ListenHost: "*", ListenPort: 0, ConnectHost: "/run/x.sock", ConnectPort: PortStreamLocal}
	r, err = DecodeRequest(encodeForward(cOpenFwd, 3, f))
	if err != nil || *r.Forward != f || r.ID != 3 {
		t.Fatalf("forward: %+v, %v", r, err)
	}
	st := &StdioRequest{ID: 9, Host: "db", Port: 5432}
	r, err = DecodeRequest(encodeStdio(st))
	if err != nil || !reflect.DeepEqual(r.Stdio, st) {
		t.Fatalf("stdio: %+v, %v", r, err)
	}
	// mux.c's NEW_SESSION: u32 type, u32 id, string reserved, five u32s, two strings.
	want := []byte{0x10, 0, 0, 2, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, '~'}
	if got := encodeSession(s); !bytes.HasPrefix(got, want) {
		t.Fatalf("layout % x", got[:len(want)])
	}
}

// TestWireBounds: a length over CHANNEL_MUX_MAX_PACKET is refused before
// anything is allocated; strings past the packet's end are malformed.
func TestWireBounds(t *testing.T) {
	hdr := binary.BigEndian.AppendUint32(nil, maxPacket+1)
	if _, err := readPacket(bytes.NewReader(hdr)); err == nil {
		t.Fatal("oversized packet accepted")
	}
	bad := msg(cOpenFwd).u32(1).u32(FwdLocal).u32(1 << 30).b
	if _, err := DecodeRequest(bad); err == nil {
		t.Fatal("string past the end accepted")
	}
	port := encodeForward(cOpenFwd, 1, Forward{Type: FwdLocal, ListenPort: 70000, ConnectHost: "x", ConnectPort: 1})
	if _, err := DecodeRequest(port); err == nil {
		t.Fatal("port 70000 accepted")
	}
	nul := msg(cNewStdioFwd).u32(1).str("").str("a\x00b").u32(1).b
	if _, err := DecodeRequest(nul); err == nil {
		t.Fatal("NUL in a C string accepted")
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(encodeHello())
	f.Add(encodeSession(&SessionRequest{ID: 1, Term: "xterm", Command: "true", Env: []string{"A=1"}}))
	f.Add(encodeForward(cOpenFwd, 2, Forward{Type: FwdLocal, ListenPort: 1, ConnectHost: "h", ConnectPort: 2}))
	f.Add(encodeStdio(&StdioRequest{ID: 3, Host: "h", Port: 22}))
	f.Add(msg(cAliveCheck).u32(4).b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to something that decodes the same.
		switch {
		case r.Session != nil:
			r2, err := DecodeRequest(encodeSession(r.Session))
			if err != nil || !reflect.DeepEqual(r2.Session, r.Session) {
				t.Fatalf("session round trip: %+v vs %+v (%v)", r2, r, err)
			}
		case r.Forward != nil:
			r2, err := DecodeRequest(encodeForward(r.Type, r.ID, *r.Forward))
			if err != nil || *r2.Forward != *r.Forward {
				t.Fatalf("forward round trip: %v", err)
			}
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	f.Add(msg(msgHello).u32(4).str("info").str("0").b)
	f.Add(msg(sAlive).u32(1).u32(1234).b)
	f.Add(msg(sFailure).u32(1).str("no").b)
	f.Add(msg(sExitMessage).u32(1).u32(3).b)
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodeReply(b)
	})
}

// FuzzReadPacket: any byte stream gives packets within bounds or an error.
func FuzzReadPacket(f *testing.F) {
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for i := 0; i < 64; i++ {
			p, err := readPacket(r)
			if err != nil {
				return
			}
			if len(p) > maxPacket {
				t.Fatalf("packet of %d bytes", len(p))
			}
		}
	})
}
