package sshproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/rssh/rssh/config"

	"github.com/rssh/rssh/internal/crash"
)

// maxKeyFileBytes bounds what rssh reads from an identity file; real keys
// are a few KiB, and a path pointing at a huge file must not exhaust memory.
const maxKeyFileBytes = 1 << 20

// Prompter asks the person at the terminal. Implementations read from the
// controlling terminal, never from the session's stdin.
type Prompter interface {
	// Secret asks without echo (passphrases, passwords).
	Secret(prompt string) (string, error)
	// Confirm asks with echo and returns the line typed.
	Confirm(prompt string) (string, error)
}

// agentSocket resolves IdentityAgent the way OpenSSH does: unset or
// "SSH_AUTH_SOCK" means the environment variable, "$VAR" another variable,
// "none" no agent, anything else a path (already expanded by config).
func (cl *Client) agentSocket(cfg *config.Config) string {
	ia := cfg.IdentityAgent
	switch {
	case ia == "" || ia == "SSH_AUTH_SOCK":
		return cl.Getenv("SSH_AUTH_SOCK")
	case ia == "none":
		return ""
	case strings.HasPrefix(ia, "$"):
		return cl.Getenv(strings.Trim(ia[1:], "{}"))
	}
	return ia
}

// identity is one candidate key, in the order it will be offered.
type identity struct {
	signer ssh.Signer
	source string // "agent" or the file it came from
}

// authMethods builds the methods OpenSSH would try, in its order: public
// keys (agent keys first, in the agent's order, identity files after),
// then keyboard-interactive and password when a terminal can ask.
func (cl *Client) authMethods(cfg *config.Config, tap *kexTap) ([]ssh.AuthMethod, func(), error) {
	var closers []io.Closer
	cleanup := func() {
		for _, c := range closers {
			c.Close()
		}
	}
	ids, err := cl.identities(cfg, &closers, tap)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	var methods []ssh.AuthMethod
	var signers []ssh.Signer
	var offered []ssh.PublicKey // the keys behind signers, index for index
	noted := &lastSigned{index: -1}
	for _, id := range ids {
		s := acceptedSigner(guardSigner(noted.wrap(id.signer, len(signers))), cfg.PubkeyAcceptedAlgorithms)
		if s == nil {
			cl.Log.Debug(fmt.Sprintf("Skipping %s key %s - corresponding algo not in PubkeyAcceptedAlgorithms",
				id.signer.PublicKey().Type(), id.source))
			continue
		}
		signers = append(signers, s)
		offered = append(offered, id.signer.PublicKey())
		cl.Log.Debug("will offer public key", "key", fingerprint(id.signer.PublicKey()), "from", id.source)
	}
	if cfg.PubkeyAuthentication && len(signers) > 0 {
		methods = append(methods, cl.publicKeys(signers, offered, noted))
	}
	if !cfg.BatchMode && cl.Prompt != nil {
		tries := max(cfg.NumberOfPasswordPrompts, 1)
		user, host := cfg.User, cfg.Hostname
		if cfg.KbdInteractiveAuthentication {
			methods = append(methods, ssh.RetryableAuthMethod(ssh.KeyboardInteractive(
				func(name, instruction string, questions []string, echos []bool) ([]string, error) {
					defer crash.Recover()
					enter(cbKeyboard)
					answers := make([]string, len(questions))
					for i, q := range questions {
						var err error
						if echos[i] {
							answers[i], err = cl.Prompt.Confirm(q)
						} else {
							answers[i], err = cl.Prompt.Secret(q)
						}
						if err != nil {
							return nil, err
						}
					}
					return answers, nil
				}), tries))
		}
		if cfg.PasswordAuthentication {
			methods = append(methods, ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
				defer crash.Recover()
				enter(cbPassword)
				return cl.Prompt.Secret(fmt.Sprintf("%s@%s's password: ", user, host))
			}), tries))
		}
	}
	return methods, cleanup, nil
}

func (cl *Client) identities(cfg *config.Config, closers *[]io.Closer, tap *kexTap) ([]identity, error) {
	type fileKey struct {
		path   string
		pub    ssh.PublicKey
		signer ssh.Signer       // nil until needed for an encrypted key
		cert   *ssh.Certificate // PATH.pub when it certifies pub
	}
	var files []*fileKey
	for _, path := range cfg.IdentityFiles {
		pub, signer, err := cl.loadIdentity(path, cfg.BatchMode)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				// As ssh's sshkey_load_public: with the private half gone
				// (held by the agent alone), PATH.pub still names the key.
				if pb, perr := readBounded(path + ".pub"); perr == nil {
					if k, _, _, _, kerr := ssh.ParseAuthorizedKey(pb); kerr == nil {
						f := &fileKey{path: path, pub: k}
						if c, ok := k.(*ssh.Certificate); ok {
							f.pub, f.cert = c.Key, c
						}
						files = append(files, f)
						continue
					}
				}
				cl.Log.Debug("identity file not accessible", "file", path, "err", err)
				continue
			}
			return nil, err
		}
		files = append(files, &fileKey{path: path, pub: pub, signer: signer, cert: pubCertificate(path, pub)})
	}
	// An identity whose PATH.pub is a certificate is that certificate, as
	// ssh reads an identity's public half from PATH.pub (sshkey_load_public)
	// and signs a certificate with the private key beside it.
	asIdentity := func(f *fileKey, s ssh.Signer, source string) identity {
		if f != nil && f.cert != nil {
			if cs, err := ssh.NewCertSigner(f.cert, s); err == nil {
				return identity{signer: cs, source: f.path}
			}
		}
		return identity{signer: s, source: source}
	}
	certs := cl.loadCertificates(cfg)

	// OpenSSH's order (sshconnect2.c pubkey_prepare): agent keys that a
	// configured identity names, then the agent's other keys (unless
	// IdentitiesOnly), then identity files the agent does not hold.
	var preferred, others []identity
	sock := cl.agentSocket(cfg)
	if sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			cl.Log.Debug("agent not reachable", "socket", sock, "err", err)
		} else {
			*closers = append(*closers, conn)
			ag := agent.NewClient(conn)
			signers, err := ag.Signers()
			if err != nil {
				cl.Log.Debug("listing agent keys failed", "err", err)
			}
			// Bound to the host (session-bind) before the first signature,
			// for keys added with ssh-add -h.
			binder := &agentBinder{agent: ag, tap: tap, log: cl.Log}
			for _, s := range signers {
				s = &boundSigner{Signer: s, binder: binder}
				var matched *fileKey
				for i, f := range files {
					if bytes.Equal(f.pub.Marshal(), s.PublicKey().Marshal()) {
						// The agent's copy needs no passphrase.
						files = append(files[:i], files[i+1:]...)
						matched = f
						break
					}
				}
				switch {
				case matched != nil || certs.matches(s.PublicKey()):
					preferred = append(preferred, asIdentity(matched, s, "agent"))
				case !cfg.IdentitiesOnly:
					others = append(others, identity{signer: s, source: "agent"})
				}
			}
		}
	}
	out := append(preferred, others...)
	for _, f := range files {
		if f.signer == nil {
			cl.Log.Debug("identity file is a public key the agent does not hold", "file", f.path)
			continue
		}
		out = append(out, asIdentity(f, f.signer, f.path))
	}
	// Certificates go first for the key they certify, as OpenSSH offers them.
	var withCerts []identity
	for _, id := range out {
		for _, c := range certs.forKey(id.signer.PublicKey()) {
			cs, err := ssh.NewCertSigner(c.cert, id.signer)
			if err == nil {
				withCerts = append(withCerts, identity{signer: cs, source: c.path})
			}
		}
		withCerts = append(withCerts, id)
	}
	return withCerts, nil
}

// pubCertificate is PATH.pub when it holds a certificate of pub, else nil.
func pubCertificate(path string, pub ssh.PublicKey) *ssh.Certificate {
	b, err := readBounded(path + ".pub")
	if err != nil {
		return nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil
	}
	c, ok := k.(*ssh.Certificate)
	if !ok || !bytes.Equal(c.Key.Marshal(), pub.Marshal()) {
		return nil
	}
	return c
}

type certFile struct {
	path string
	cert *ssh.Certificate
}

type certSet []certFile

func (cs certSet) forKey(k ssh.PublicKey) []certFile {
	var out []certFile
	for _, c := range cs {
		if bytes.Equal(c.cert.Key.Marshal(), k.Marshal()) {
			out = append(out, c)
		}
	}
	return out
}

func (cs certSet) matches(k ssh.PublicKey) bool { return len(cs.forKey(k)) > 0 }

// loadCertificates reads CertificateFile entries and each identity file's
// -cert.pub companion; missing ones are skipped as OpenSSH does.
func (cl *Client) loadCertificates(cfg *config.Config) certSet {
	var out certSet
	paths := append([]string{}, cfg.CertificateFiles...)
	for _, p := range cfg.IdentityFiles {
		paths = append(paths, p+"-cert.pub")
	}
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		b, err := readBounded(p)
		if err != nil {
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			cl.Log.Debug("certificate file unreadable", "file", p, "err", err)
			continue
		}
		if c, ok := k.(*ssh.Certificate); ok {
			out = append(out, certFile{path: p, cert: c})
		}
	}
	return out
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeyFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes, not a key", path, maxKeyFileBytes)
	}
	return b, nil
}

// loadIdentity reads a private key file. An encrypted key becomes a signer
// that asks for the passphrase only when the server has accepted its public
// key, as OpenSSH does; in BatchMode it is offered but cannot sign.
func (cl *Client) loadIdentity(path string, batch bool) (ssh.PublicKey, ssh.Signer, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, nil, err
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err == nil {
		return signer.PublicKey(), signer, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		// A public key as IdentityFile (the 1Password way: the private half
		// lives in the agent) names a key only the agent can sign with.
		if pub, _, _, _, perr := ssh.ParseAuthorizedKey(b); perr == nil {
			return pub, nil, nil
		}
		return nil, nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	pub := missing.PublicKey
	if pub == nil {
		// Old PEM-format keys carry no clear public key: use the .pub beside it.
		pb, perr := readBounded(path + ".pub")
		if perr != nil {
			return nil, nil, fmt.Errorf("identity file %s is encrypted and has no %s.pub to show its public key", path, path)
		}
		if pub, _, _, _, perr = ssh.ParseAuthorizedKey(pb); perr != nil {
			return nil, nil, fmt.Errorf("%s.pub: %w", path, perr)
		}
	}
	return pub, &lazySigner{path: path, pub: pub, raw: b, batch: batch, prompt: cl.Prompt}, nil
}

// lazySigner decrypts its key on first use.
type lazySigner struct {
	path   string
	pub    ssh.PublicKey
	raw    []byte
	batch  bool
	prompt Prompter

	once   sync.Once
	signer ssh.Signer
	err    error
}

var _ ssh.AlgorithmSigner = (*lazySigner)(nil)

func (s *lazySigner) PublicKey() ssh.PublicKey { return s.pub }

func (s *lazySigner) unlock() (ssh.Signer, error) {
	s.once.Do(func() {
		if s.batch || s.prompt == nil {
			s.err = fmt.Errorf("identity file %s is encrypted and no passphrase can be asked (BatchMode or no terminal)", s.path)
			return
		}
		for range 3 {
			pass, err := s.prompt.Secret(fmt.Sprintf("Enter passphrase for key '%s': ", s.path))
			if err != nil {
				s.err = err
				return
			}
			if pass == "" {
				break
			}
			signer, err := ssh.ParsePrivateKeyWithPassphrase(s.raw, []byte(pass))
			if err == nil {
				s.signer = signer
				return
			}
		}
		s.err = fmt.Errorf("identity file %s: bad passphrase", s.path)
	})
	return s.signer, s.err
}

func (s *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	signer, err := s.unlock()
	if err != nil {
		return nil, err
	}
	return signer.Sign(rand, data)
}

func (s *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	signer, err := s.unlock()
	if err != nil {
		return nil, err
	}
	if as, ok := signer.(ssh.AlgorithmSigner); ok {
		return as.SignWithAlgorithm(rand, data, algorithm)
	}
	return signer.Sign(rand, data)
}

// rsaSigAlgs maps the RSA entries of PubkeyAcceptedAlgorithms, plain and
// certificate, to the signature algorithm each stands for.
var rsaSigAlgs = map[string]string{
	ssh.KeyAlgoRSASHA512: ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256: ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA: ssh.KeyAlgoRSA,
	ssh.CertAlgoRSASHA512v01: ssh.KeyAlgoRSASHA512, ssh.CertAlgoRSASHA256v01: ssh.KeyAlgoRSASHA256, ssh.CertAlgoRSAv01: ssh.KeyAlgoRSA,
}

// acceptedSigner applies PubkeyAcceptedAlgorithms (the resolved list) to
// one identity as OpenSSH does: nil when the key's type is not in it
// (key_type_allowed_by_config; an RSA key is allowed by any of ssh-rsa,
// rsa-sha2-512 and rsa-sha2-256, a certificate by its -cert- forms), and an
// RSA key signs only with the listed algorithms, in the list's order, the
// first the server accepts winning (key_sig_algorithm) — rsa-sha2-512
// before rsa-sha2-256 by default, where x/crypto alone prefers 256.
func acceptedSigner(s ssh.Signer, accepted []string) ssh.Signer {
	if len(accepted) == 0 {
		return s // a Config made by hand: x/crypto's choice
	}
	t := s.PublicKey().Type()
	isRSA := t == ssh.KeyAlgoRSA || t == ssh.CertAlgoRSAv01
	if !isRSA {
		if slices.Contains(accepted, t) {
			return s
		}
		return nil
	}
	cert := t == ssh.CertAlgoRSAv01
	var algs []string
	for _, a := range accepted {
		sig, ok := rsaSigAlgs[a]
		if !ok || strings.Contains(a, "-cert-") != cert || slices.Contains(algs, sig) {
			continue
		}
		algs = append(algs, sig)
	}
	if len(algs) == 0 {
		return nil
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		return s // signs with ssh-rsa only, which x/crypto checks itself
	}
	ms, err := ssh.NewSignerWithAlgorithms(as, algs)
	if err != nil {
		return nil
	}
	return ms
}
