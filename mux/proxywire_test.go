package mux

import (
	"bytes"
	"testing"
)

// FuzzProxyPacket: the proxy-mode packet reader and message parser never
// panic nor allocate past the packet, and what parses encodes back to
// the same message.
func FuzzProxyPacket(f *testing.F) {
	for _, pm := range []*proxyMsg{
		{Type: msgGlobalRequest, Name: "tcpip-forward", WantReply: true, Rest: new(builder).str("").u32(0).b},
		{Type: msgRequestSuccess, Rest: new(builder).u32(4242).b},
		{Type: msgChannelOpen, Name: "session", Sender: 3, Window: 2 << 20, MaxPacket: 32768},
		{Type: msgChannelOpenConfirm, Recipient: 3, Sender: 7, Window: 1, MaxPacket: 2},
		{Type: msgChannelOpenFailure, Recipient: 3, Code: 2, Data: []byte("no")},
		{Type: msgChannelWindowAdj, Recipient: 1, Window: 99},
		{Type: msgChannelData, Recipient: 1, Data: []byte("hello")},
		{Type: msgChannelExtData, Recipient: 1, Code: 1, Data: []byte("err")},
		{Type: msgChannelEOF, Recipient: 1},
		{Type: msgChannelClose, Recipient: 1},
		{Type: msgChannelRequest, Recipient: 1, Name: "exec", WantReply: true, Rest: new(builder).str("true").b},
		{Type: msgChannelSuccess, Recipient: 1},
		{Type: msgChannelFailure, Recipient: 1},
	} {
		f.Add(appendProxyPacket(nil, pm.marshal()))
	}
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			m, err := readProxyPacket(r)
			if err != nil {
				return
			}
			if len(m)+1 > maxProxyPacket {
				t.Fatalf("packet of %d bytes read", len(m))
			}
			pm, err := parseProxyMsg(m)
			if err != nil {
				continue
			}
			again, err := parseProxyMsg(pm.marshal())
			if err != nil {
				t.Fatalf("%+v does not parse again: %v", pm, err)
			}
			if !bytes.Equal(again.marshal(), pm.marshal()) {
				t.Fatalf("round trip: %+v != %+v", again, pm)
			}
		}
	})
}
