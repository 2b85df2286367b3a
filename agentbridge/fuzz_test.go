package agentbridge

import (
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/rssh/rssh/internal/testenv"
	"golang.org/x/crypto/ssh"
)

// FuzzHandleMessage feeds a byte stream, framed as a client would, to one
// connection's message handler in front of a real ssh-agent. The first byte
// picks the peer's role. Every reply must be a valid answer type within the
// cap, a malformed message must end the connection without a panic, and
// nothing may change the upstream agent.
func FuzzHandleMessage(f *testing.F) {
	testenv.Need(f, "ssh-add", "openssh-client")
	ag := testenv.StartAgent(f)
	dir := f.TempDir()
	k := testenv.NewKey(f, dir, "k")
	host := testenv.NewKey(f, dir, "host")
	ag.Add(f, k)

	b, err := New(Config{
		Listen:        dir + "/unused.sock",
		Upstream:      ag.Sock,
		AllowKeys:     []string{fp(k.PublicKey)},
		AllowHostKeys: []string{fp(host.PublicKey)},
		Log:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		f.Fatal(err)
	}
	b.owner = 4242

	sid := bytes.Repeat([]byte{7}, 32)
	hostSig, _ := host.Signer.Sign(rand.Reader, sid)
	bind := append([]byte{msgExtension}, ssh.Marshal(struct {
		Name                          string
		HostKey, SessionID, Signature []byte
		Forwarding                    bool
	}{sessionBindExtension, host.PublicKey.Marshal(), sid, ssh.Marshal(hostSig), false})...)
	sign := append([]byte{msgSignRequest}, ssh.Marshal(struct {
		Key, Data []byte
		Flags     uint32
	}{k.PublicKey.Marshal(), userauthData(sid, k.PublicKey, nil), 0})...)
	stream := func(role byte, msgs ...[]byte) []byte {
		out := []byte{role}
		for _, m := range msgs {
			out = append(out, frame(m)...)
		}
		return out
	}
	f.Add(stream(0, []byte{msgRequestIdentities}))
	f.Add(stream(1, []byte{msgRequestIdentities}, sign))
	f.Add(stream(1, bind, sign, sign))
	f.Add(stream(0, sign, []byte{msgLock, 0, 0, 0, 1, 'x'}, []byte{msgRemoveAllIdentities}))
	f.Add(stream(1, []byte{msgExtension, 0, 0, 0, 5, 'q', 'u', 'e', 'r', 'y'}))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff})

	before := upstreamKeys(f, ag.Sock)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		c := &conn{b: b, peer: peer{UID: 0, PID: os.Getpid()}, owner: in[0]&1 == 0}
		defer c.close()
		r := bytes.NewReader(in[1:])
		for i := 0; i < 64; i++ { // bounded: a stream of at most 64 requests
			msg, err := readMessage(r, b.cfg.MaxMessage)
			if err != nil {
				break
			}
			reply, err := c.handle(msg)
			if err != nil {
				break // malformed: the connection would close
			}
			if len(reply) == 0 || len(reply) > b.cfg.MaxMessage {
				t.Fatalf("reply of %d bytes", len(reply))
			}
			switch reply[0] {
			case msgFailure, msgSuccess, msgIdentitiesAnswer, msgSignResponse:
			default:
				t.Fatalf("reply type %d to request type %d", reply[0], msg[0])
			}
		}
		if after := upstreamKeys(t, ag.Sock); !bytes.Equal([]byte(join(after)), []byte(join(before))) {
			t.Fatalf("upstream keys changed: %v → %v", before, after)
		}
	})
}

func join(xs []string) string {
	var b bytes.Buffer
	for _, x := range xs {
		b.WriteString(x + "\n")
	}
	return b.String()
}
