package sshproxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/rssh/rssh/config"
	"github.com/rssh/rssh/hostkeys"
	"github.com/rssh/rssh/internal/crash"
)

// UpdateHostKeys, as OpenSSH's client does it (clientloop.c
// client_input_hostkeys, client_global_hostkeys_prove_confirm,
// update_known_hosts): after authentication an OpenSSH server sends all its
// host keys in a hostkeys-00@openssh.com global request. When the host key
// of this connection was trusted from the user's known_hosts (or confirmed
// at the prompt), the keys HostKeyAlgorithms accepts are compared with the
// host's lines there; the server proves it holds each new one by signing
// it with the session identifier (hostkeys-prove-00@openssh.com), and then
// known_hosts gets the new keys and loses the ones the server no longer
// has. The files are rewritten whole through a temporary file, every other
// line kept as written (hostkeys.Replace).
//
// UpdateHostKeys=ask is not asked: rssh logs what it would change and
// leaves known_hosts alone (prompting while a session reads the terminal
// would race it for the answer).

const (
	reqHostKeys      = "hostkeys-00@openssh.com"
	reqHostKeysProve = "hostkeys-prove-00@openssh.com"

	// maxHostKeys bounds the keys rssh takes from one announcement.
	maxHostKeys = 256
	// hostKeysWait is how long Close waits for an update under way (the
	// server answers the proof request at once).
	hostKeysWait = 3 * time.Second
)

// hostKeyUpdate is one connection's UpdateHostKeys state.
type hostKeyUpdate struct {
	cl   *Client
	cfg  *config.Config
	name string
	port int

	mu      sync.Mutex
	decided bool          // the first key exchange's host key check has run
	trusted bool          // ... and found the key in a user file, or the user confirmed it
	seen    bool          // the server has announced its keys
	running chan struct{} // closed when the update under way ends; nil before one starts
}

func (cl *Client) newHostKeyUpdate(cfg *config.Config) *hostKeyUpdate {
	name, port := hostKeyName(cfg)
	return &hostKeyUpdate{cl: cl, cfg: cfg, name: name, port: port}
}

// noteHostKey records whether the first host key check trusted the key
// enough for an update: ssh turns UpdateHostKeys off for a key it accepted
// as new without asking, one from a global file or a KnownHostsCommand,
// one found only without the port, and a host certificate.
func (u *hostKeyUpdate) noteHostKey(trusted bool) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.decided {
		u.decided, u.trusted = true, trusted
	}
}

// knownInUserFile is the check for a key Check found: a plain key line, in
// a user known_hosts file, under the name with its port.
func (u *hostKeyUpdate) knownInUserFile(res hostkeys.Result) bool {
	return u != nil && res.Found != nil && res.Found.Marker == "" &&
		res.Name == displayName(u.name, u.port) &&
		slices.Contains(u.cfg.UserKnownHostsFiles, res.Found.File)
}

// filter takes the server's hostkeys-00 announcement out of the global
// requests and passes the others on.
func (u *hostKeyUpdate) filter(c ssh.Conn, in <-chan *ssh.Request) <-chan *ssh.Request {
	out := make(chan *ssh.Request)
	crash.Go(func() {
		defer close(out)
		for req := range in {
			if req.Type != reqHostKeys {
				out <- req
				continue
			}
			// ssh answers success whatever it does with the keys.
			if req.WantReply {
				req.Reply(true, nil)
			}
			u.receive(c, req.Payload)
		}
	})
	return out
}

func (u *hostKeyUpdate) receive(c ssh.Conn, payload []byte) {
	log := u.cl.Log
	u.mu.Lock()
	seen, trusted := u.seen, u.trusted
	u.seen = true
	u.mu.Unlock()
	switch {
	case seen:
		log.Debug("server sent its host keys again: ignored")
		return
	case u.cfg.UpdateHostKeys != "yes" && u.cfg.UpdateHostKeys != "ask",
		u.cfg.UpdateHostKeys == "ask" && u.cfg.BatchMode,
		len(u.cfg.UserKnownHostsFiles) == 0:
		return
	case !trusted:
		log.Debug("hostkey not known or explicitly trusted: disabling UpdateHostkeys")
		return
	}
	done := make(chan struct{})
	u.mu.Lock()
	u.running = done
	u.mu.Unlock()
	crash.Go(func() {
		defer close(done)
		u.update(c, payload)
	})
}

// wait waits, at most d, for an update under way.
func (u *hostKeyUpdate) wait(d time.Duration) {
	if u == nil {
		return
	}
	u.mu.Lock()
	done := u.running
	u.mu.Unlock()
	if done == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		u.cl.Log.Debug("host key update still under way at close: abandoned")
	}
}

// acceptedByHostKeyAlgorithms is key_accepted_by_hostkeyalgs: an RSA key
// is accepted by rsa-sha2-256 or rsa-sha2-512, any key by its own type.
func acceptedByHostKeyAlgorithms(k ssh.PublicKey, algs []string) bool {
	if len(algs) == 0 {
		return true // a Config made by hand: x/crypto's own list
	}
	if k.Type() == ssh.KeyAlgoRSA && (slices.Contains(algs, ssh.KeyAlgoRSASHA256) || slices.Contains(algs, ssh.KeyAlgoRSASHA512)) {
		return true
	}
	return slices.Contains(algs, k.Type())
}

// parseHostKeys reads the announcement's key blobs, keeping those
// HostKeyAlgorithms accepts and no certificates; a duplicated key ends
// the update, as in ssh.
func (u *hostKeyUpdate) parseHostKeys(payload []byte) ([]ssh.PublicKey, error) {
	log := u.cl.Log
	var keys []ssh.PublicKey
	for n := 0; len(payload) > 0; n++ {
		blob, rest, ok := sshString(payload)
		if !ok {
			return nil, errors.New("parse key: malformed announcement")
		}
		payload = rest
		if n >= maxHostKeys {
			return nil, fmt.Errorf("more than %d host keys announced", maxHostKeys)
		}
		k, err := ssh.ParsePublicKey(blob)
		if err != nil {
			log.Debug("convert key: " + err.Error())
			continue
		}
		log.Debug(fmt.Sprintf("received %s key %s", keyTypeName(k), fingerprint(k)))
		if !acceptedByHostKeyAlgorithms(k, u.cfg.HostKeyAlgorithms) {
			log.Debug(fmt.Sprintf("%s key not permitted by HostkeyAlgorithms", k.Type()))
			continue
		}
		if _, ok := k.(*ssh.Certificate); ok {
			log.Debug(fmt.Sprintf("%s key is a certificate; skipping", k.Type()))
			continue
		}
		for _, o := range keys {
			if bytes.Equal(o.Marshal(), k.Marshal()) {
				return nil, fmt.Errorf("received duplicated %s host key", k.Type())
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (u *hostKeyUpdate) update(c ssh.Conn, payload []byte) {
	log := u.cl.Log
	keys, err := u.parseHostKeys(payload)
	if err != nil {
		log.Error("rssh: host key update: " + err.Error())
		return
	}
	if len(keys) == 0 {
		log.Debug("server sent no hostkeys")
		return
	}
	plan, err := hostkeys.PlanUpdate(u.cfg.UserKnownHostsFiles, u.name, u.port, keys)
	if err != nil {
		log.Error("rssh: host key update: " + err.Error())
		return
	}
	log.Debug(fmt.Sprintf("%d server keys: %d new, %d retained. %d to remove",
		len(keys), len(plan.New), len(keys)-len(plan.New), len(plan.Old)))
	if plan.Skip != "" {
		log.Debug(plan.Skip)
		return
	}
	verified := make([]bool, len(keys))
	if len(plan.New) > 0 {
		if !u.prove(c, keys, plan.New, verified) {
			return
		}
	}
	u.apply(keys, verified, plan.Old)
}

// prove asks the server to sign each new key with the session identifier
// and checks the signatures. A key whose RSA signature uses an algorithm ssh
// does not trust for this is dropped (keys[i] = nil); any bad signature
// ends the update.
func (u *hostKeyUpdate) prove(c ssh.Conn, keys []ssh.PublicKey, newKeys []int, verified []bool) bool {
	log := u.cl.Log
	var req []byte
	for _, i := range newKeys {
		req = appendSSHString(req, keys[i].Marshal())
	}
	log.Debug(fmt.Sprintf("asking server to prove ownership for %d keys", len(newKeys)))
	ok, reply, err := c.SendRequest(reqHostKeysProve, true, req)
	if err != nil {
		log.Debug("host key proof not received: " + err.Error())
		return false
	}
	if !ok {
		log.Error("Server failed to confirm ownership of private host keys")
		return false
	}
	// An RSA host key negotiated for this connection sets the signature
	// algorithm of RSA proofs; otherwise only rsa-sha2-512 and -256 count.
	rsaKexAlg := ""
	if am, ok := c.(ssh.AlgorithmsConnMetadata); ok {
		if alg := am.Algorithms().HostKey; rsaSigAlgs[alg] != "" {
			rsaKexAlg = alg
		}
	}
	sid := c.SessionID()
	for n, i := range newKeys {
		var sigBlob []byte
		var ok bool
		sigBlob, reply, ok = sshString(reply)
		if !ok {
			log.Error(fmt.Sprintf("rssh: host key update: no signature for %s key %d", keyTypeName(keys[i]), n))
			return false
		}
		var sig ssh.Signature
		if err := ssh.Unmarshal(sigBlob, &sig); err != nil {
			log.Error(fmt.Sprintf("rssh: host key update: server gave unintelligible signature for %s key %d", keyTypeName(keys[i]), n))
			return false
		}
		if keys[i].Type() == ssh.KeyAlgoRSA {
			switch {
			case rsaKexAlg == "" && sig.Format != ssh.KeyAlgoRSASHA512 && sig.Format != ssh.KeyAlgoRSASHA256:
				log.Debug(fmt.Sprintf("server used untrusted RSA signature algorithm %s for key %d, disregarding", sig.Format, n))
				keys[i] = nil
				continue
			case rsaKexAlg != "" && rsaKexAlg != ssh.CertAlgoRSAv01 && sig.Format != rsaSigAlgs[rsaKexAlg]:
				log.Error(fmt.Sprintf("rssh: host key update: server gave bad signature for %s key %d", keyTypeName(keys[i]), n))
				return false
			}
		}
		var data []byte
		data = appendSSHString(data, []byte(reqHostKeysProve))
		data = appendSSHString(data, sid)
		data = appendSSHString(data, keys[i].Marshal())
		if err := keys[i].Verify(data, &sig); err != nil {
			log.Error(fmt.Sprintf("rssh: host key update: server gave bad signature for %s key %d", keyTypeName(keys[i]), n))
			return false
		}
		verified[i] = true
	}
	if len(reply) != 0 {
		log.Error("rssh: host key update: protocol error (trailing data in the proof)")
		return false
	}
	return true
}

// apply is update_known_hosts: the changes are logged (at debug level, as
// ssh logs them at VERBOSE) and made: the server's keys recorded in the
// first user known_hosts file, the host's other lines removed from every
// user file.
func (u *hostKeyUpdate) apply(keys []ssh.PublicKey, verified []bool, old []ssh.PublicKey) {
	log := u.cl.Log
	asking := u.cfg.UpdateHostKeys == "ask"
	say := log.Debug
	if asking {
		say = log.Info
		say("The server has updated its host keys.")
		say("These changes were verified by the server's existing trusted key.")
	}
	for i, k := range keys {
		if k != nil && verified[i] {
			say(fmt.Sprintf("Learned new hostkey: %s %s", keyTypeName(k), fingerprint(k)))
		}
	}
	for _, k := range old {
		say(fmt.Sprintf("Deprecating obsolete hostkey: %s %s", keyTypeName(k), fingerprint(k)))
	}
	if asking {
		say("UpdateHostKeys ask: rssh does not ask, known_hosts is left as it is")
		return
	}
	for n, file := range u.cfg.UserKnownHostsFiles {
		fi, err := os.Stat(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				log.Debug("known hosts file " + file + " does not exist")
			} else {
				log.Error(fmt.Sprintf("rssh: known hosts file %s inaccessible: %v", file, err))
			}
			continue
		}
		if !fi.Mode().IsRegular() {
			// /dev/null, as many configs name it: nothing to rewrite.
			log.Debug("known hosts file " + file + " is not a regular file: not updated")
			continue
		}
		var put []ssh.PublicKey
		if n == 0 {
			put = keys // new keys go to the first file only
		}
		changes, err := hostkeys.Replace(file, u.name, u.port, put, u.cfg.HashKnownHosts)
		if err != nil {
			log.Error("rssh: " + err.Error())
			continue
		}
		for _, c := range changes {
			log.Debug(c)
		}
	}
}

// sshString splits an SSH string (uint32 length, bytes) off b.
func sshString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, b, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, b, false
	}
	return b[4 : 4+n], b[4+n:], true
}

func appendSSHString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}
