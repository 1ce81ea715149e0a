// Package hsm is the security module of the load switch: it holds every key (card master
// keys, PSAM master keys, KEKs, PIN and MAC working keys) and performs every operation that
// needs one: MAC1 check and MAC2 issue, TAC check, PSAM MAC check, PIN translation, host
// message MACs, working-key import under a KEK.
//
// Soft is the software implementation; Module is what a hardware HSM would have to offer to
// replace it. The module must never hand out a clear key, a clear PIN or a clear PIN block,
// never log any of them (key check values only, PANs masked 6+4), and never let a key be
// used for anything but its Usage. See docs/security-module.md.
package hsm

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/quancun/quancun/io/crypt"
)

// Usage is what a key may be used for. A key's usage is fixed for life: it is checked on
// every operation so that, for example, a PIN key can never become a MAC oracle.
type Usage string

const (
	// UsageKEK is a key-encrypting key (ZMK/TMK): it only wraps and unwraps working keys.
	UsageKEK Usage = "kek"
	// UsagePIN is a PIN key (PIK/ZPK): it only encrypts, translates and checks PIN blocks.
	UsagePIN Usage = "pin"
	// UsageMAC is a message MAC key (MAK/TAK) for host messages.
	UsageMAC Usage = "mac"
	// UsageCardMaster is a card master key (MDLK, MTK): it only derives per-card keys.
	UsageCardMaster Usage = "card-master"
	// UsagePSAMMaster is a PSAM MAC master key: it only derives per-PSAM MAC keys.
	UsagePSAMMaster Usage = "psam-master"
)

func (u Usage) valid() bool {
	switch u {
	case UsageKEK, UsagePIN, UsageMAC, UsageCardMaster, UsagePSAMMaster:
		return true
	}
	return false
}

// KeyInfo is everything about a key that may leave the module.
type KeyInfo struct {
	Name  string
	Usage Usage
	KCV   string // 8 upper-case hex characters
}

var (
	// ErrMACMismatch reports a MAC, MAC1, TAC or PSAM MAC that does not verify.
	ErrMACMismatch = errors.New("hsm: MAC mismatch")
	// ErrKCVMismatch reports a key whose check value differs from the one it came with.
	ErrKCVMismatch = errors.New("hsm: key check value mismatch")
	// ErrNoKey reports a key name the module does not hold.
	ErrNoKey = errors.New("hsm: no such key")
	// ErrWrongUsage reports a key asked to do something its usage forbids.
	ErrWrongUsage = errors.New("hsm: key usage does not allow this")
	// ErrKeyLength reports a key of the wrong length for its usage or algorithm.
	ErrKeyLength = errors.New("hsm: wrong key length")
	// ErrInput reports malformed input (lengths, names, factors, BCD, key files).
	ErrInput = errors.New("hsm: malformed input")
)

// KeyStore loads working keys received from a peer and describes held keys.
type KeyStore interface {
	Import(name string, usage Usage, wrapName string, wrapped, kcv []byte) (KeyInfo, error)
	Info(name string) (KeyInfo, error)
}

// PINTranslator re-encrypts PIN blocks from one PIN key zone to another.
type PINTranslator interface {
	TranslatePIN(fromKey, toKey, pan string, block []byte) ([]byte, error)
}

// MessageMAC computes and checks host-message MACs (field 64).
type MessageMAC interface {
	MAC(keyName string, alg MACAlg, data []byte) ([]byte, error)
	VerifyMAC(keyName string, alg MACAlg, data, mac []byte) error
}

// PSAMAuth computes and checks the kiosk messages' PSAM MACs.
type PSAMAuth interface {
	PSAMMAC(masterName string, factors [][]byte, data []byte) ([4]byte, error)
	VerifyPSAMMAC(masterName string, factors [][]byte, data []byte, mac [4]byte) error
}

// LoadAuth is the card side of a load: MAC1 check, MAC2 issue, TAC check.
type LoadAuth interface {
	VerifyMAC1(r LoadRequest) error
	IssueMAC2(r LoadRequest, hostDateTime [7]byte) ([4]byte, error)
	ComputeTAC(in TACInput) ([4]byte, error)
	VerifyTAC(in TACInput, tac [4]byte) error
}

// Module is what the switch needs from a security module, so a hardware HSM can sit behind
// it. Key generation, clear import, export and key files are operator/peer tools on Soft.
type Module interface {
	KeyStore
	PINTranslator
	MessageMAC
	PSAMAuth
	LoadAuth
}

var _ Module = (*Soft)(nil)

// Soft is the software security module. Each key is stored encrypted under the master key
// (3DES-ECB) next to a cached cipher.Block built from it. The cache is a deliberate trade-off:
// building a 3DES key schedule costs about as much as the MAC itself, and the switch MACs
// thousands of messages per second; a key schedule in memory is as secret as the key, so the
// cache does not weaken a software module (its memory is the boundary either way) but it does
// keep clear key bytes out of every struct that could be printed, marshalled or logged.
// Soft is safe for concurrent use.
type Soft struct {
	master    cipher.Block
	masterKCV string
	log       *slog.Logger

	mu   sync.RWMutex
	keys map[string]*entry
}

// entry is one stored key. Entries are immutable: replacing a key swaps the pointer, so a
// reader holding an entry never sees it change.
type entry struct {
	info    KeyInfo
	wrapped []byte       // key under the master key, 3DES-ECB
	block   cipher.Block // DES (8-byte MAC keys) or 3DES EDE2
	k1, k2  cipher.Block // single-DES halves of a 16-byte MAC key, for retail MACs
}

// NewSoft returns an empty module whose keys will be stored under masterKey (16 bytes, two
// different halves). The caller should wipe masterKey afterwards; the module keeps only its
// key schedule. A nil logger discards.
func NewSoft(masterKey []byte, logger *slog.Logger) (*Soft, error) {
	if len(masterKey) != 16 {
		return nil, fmt.Errorf("hsm: master key must be 16 bytes, got %d: %w", len(masterKey), ErrKeyLength)
	}
	if crypt.Equal(masterKey[:8], masterKey[8:]) {
		return nil, fmt.Errorf("hsm: master key halves are equal (single DES): %w", ErrKeyLength)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b, err := crypt.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("hsm: master key: %w", err)
	}
	m := &Soft{master: b, masterKCV: kcvOf(b), log: logger, keys: make(map[string]*entry)}
	m.log.Info("security module started", "master_kcv", m.masterKCV)
	return m, nil
}

// MasterKCV is the check value of the master key, so an operator can tell which master a
// module or key file belongs to.
func (m *Soft) MasterKCV() string { return m.masterKCV }

// kcvOf is the KCV as 8 upper-case hex characters: left 4 bytes of E_K(0...0).
func kcvOf(b cipher.Block) string {
	var z [8]byte
	b.Encrypt(z[:], z[:])
	return strings.ToUpper(hex.EncodeToString(z[:4]))
}

// checkName keeps names short and printable so they are safe in logs and key files.
func checkName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("hsm: key name must be 1 to 64 characters: %w", ErrInput)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._:/-", c) >= 0
		if !ok {
			return fmt.Errorf("hsm: key name %q: only letters, digits and ._:/- allowed: %w", name, ErrInput)
		}
	}
	return nil
}

// keyLengthOK: every key is double-length 3DES, except that a MAC key may be single DES
// because some banks' dialects still use a single-DES MAK (spec 7.5).
func keyLengthOK(u Usage, n int) bool {
	return n == 16 || n == 8 && u == UsageMAC
}

// newEntry wraps key under the master key and builds the cached blocks; the entry keeps no
// clear copy of key.
func (m *Soft) newEntry(name string, u Usage, key []byte) (*entry, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if !u.valid() {
		return nil, fmt.Errorf("hsm: key %s: unknown usage %q: %w", name, u, ErrInput)
	}
	if !keyLengthOK(u, len(key)) {
		return nil, fmt.Errorf("hsm: key %s (%s) cannot be %d bytes: %w", name, u, len(key), ErrKeyLength)
	}
	b, err := crypt.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("hsm: key %s: %w", name, err)
	}
	e := &entry{block: b, wrapped: make([]byte, len(key))}
	for i := 0; i < len(key); i += 8 {
		m.master.Encrypt(e.wrapped[i:i+8], key[i:i+8])
	}
	if u == UsageMAC && len(key) == 16 {
		e.k1, _ = des.NewCipher(key[:8])
		e.k2, _ = des.NewCipher(key[8:])
	}
	e.info = KeyInfo{Name: name, Usage: u, KCV: kcvOf(b)}
	return e, nil
}

// unwrap returns the clear key of e. Callers wipe it when done.
func (m *Soft) unwrap(e *entry) []byte {
	k := make([]byte, len(e.wrapped))
	for i := 0; i < len(k); i += 8 {
		m.master.Decrypt(k[i:i+8], e.wrapped[i:i+8])
	}
	return k
}

func wipe(b []byte) { clear(b) }

// store puts e under its name. A name keeps its usage for life: replacing a PIN key with a
// MAC key of the same name would let old references use new material for another purpose.
func (m *Soft) store(e *entry) (old *entry, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old = m.keys[e.info.Name]
	if old != nil && old.info.Usage != e.info.Usage {
		return nil, fmt.Errorf("hsm: key %s is %s, cannot replace it with a %s key: %w", e.info.Name, old.info.Usage, e.info.Usage, ErrWrongUsage)
	}
	m.keys[e.info.Name] = e
	return old, nil
}

func (m *Soft) logLoaded(msg string, e, old *entry, attrs ...any) {
	attrs = append(attrs, "name", e.info.Name, "usage", string(e.info.Usage), "kcv", e.info.KCV)
	if old != nil {
		attrs = append(attrs, "replaced_kcv", old.info.KCV)
	}
	m.log.Info(msg, attrs...)
}

// get returns the named key if its usage is one of want.
func (m *Soft) get(name string, want ...Usage) (*entry, error) {
	m.mu.RLock()
	e := m.keys[name]
	m.mu.RUnlock()
	if e == nil {
		return nil, fmt.Errorf("hsm: key %q: %w", name, ErrNoKey)
	}
	for _, u := range want {
		if e.info.Usage == u {
			return e, nil
		}
	}
	need := make([]string, len(want))
	for i, u := range want {
		need[i] = string(u)
	}
	return nil, fmt.Errorf("hsm: key %s is %s, need %s: %w", name, e.info.Usage, strings.Join(need, " or "), ErrWrongUsage)
}

// ImportClear stores a clear key (key ceremony, test set-ups, simulated peers). The module
// keeps its own copy; the caller should wipe key.
func (m *Soft) ImportClear(name string, usage Usage, key []byte) (KeyInfo, error) {
	e, err := m.newEntry(name, usage, key)
	if err != nil {
		return KeyInfo{}, err
	}
	old, err := m.store(e)
	if err != nil {
		return KeyInfo{}, err
	}
	m.logLoaded("key loaded", e, old, "source", "clear")
	return e.info, nil
}

// Import stores a working key received encrypted under the KEK wrapName (3DES-ECB, as in a
// sign-on response's field 62). kcv (3 or 4 bytes) must match the unwrapped key, otherwise
// nothing is stored, the previous key of that name stays, and the error is ErrKCVMismatch:
// the peer should sign on again.
func (m *Soft) Import(name string, usage Usage, wrapName string, wrapped, kcv []byte) (KeyInfo, error) {
	kek, err := m.get(wrapName, UsageKEK)
	if err != nil {
		return KeyInfo{}, err
	}
	if usage == UsageKEK || usage == UsageCardMaster || usage == UsagePSAMMaster {
		return KeyInfo{}, fmt.Errorf("hsm: key %s: only working keys (pin, mac) are imported under a KEK: %w", name, ErrWrongUsage)
	}
	if len(kcv) != 3 && len(kcv) != 4 {
		return KeyInfo{}, fmt.Errorf("hsm: key %s: KCV must be 3 or 4 bytes, got %d: %w", name, len(kcv), ErrInput)
	}
	if len(wrapped) == 0 || len(wrapped)%8 != 0 {
		return KeyInfo{}, fmt.Errorf("hsm: key %s: wrapped key must be 8 or 16 bytes, got %d: %w", name, len(wrapped), ErrKeyLength)
	}
	k := make([]byte, len(wrapped))
	defer wipe(k)
	for i := 0; i < len(wrapped); i += 8 {
		kek.block.Decrypt(k[i:i+8], wrapped[i:i+8])
	}
	e, err := m.newEntry(name, usage, k)
	if err != nil {
		return KeyInfo{}, err
	}
	want := strings.ToUpper(hex.EncodeToString(kcv))
	if !crypt.Equal([]byte(e.info.KCV[:len(want)]), []byte(want)) {
		m.log.Warn("key refused: KCV mismatch", "name", name, "usage", string(usage), "wrap", wrapName, "kcv_received", want, "kcv_computed", e.info.KCV)
		// The computed KCV goes to the operator's log only: handing it back to the caller
		// would make Import a KCV oracle for arbitrary blobs.
		return KeyInfo{}, fmt.Errorf("hsm: key %s under %s: received KCV %s does not match: %w", name, wrapName, want, ErrKCVMismatch)
	}
	old, err := m.store(e)
	if err != nil {
		return KeyInfo{}, err
	}
	m.logLoaded("key imported", e, old, "wrap", wrapName, "wrap_kcv", kek.info.KCV)
	return e.info, nil
}

// Export returns the working key name encrypted under the KEK wrapName, with its 4-byte KCV
// (what a bank host puts in field 62). Only PIN and MAC keys leave the module: masters and
// KEKs move by key ceremony, not by API.
func (m *Soft) Export(name, wrapName string) (wrapped, kcv []byte, err error) {
	kek, err := m.get(wrapName, UsageKEK)
	if err != nil {
		return nil, nil, err
	}
	e, err := m.get(name, UsagePIN, UsageMAC)
	if err != nil {
		return nil, nil, err
	}
	k := m.unwrap(e)
	defer wipe(k)
	wrapped = make([]byte, len(k))
	for i := 0; i < len(k); i += 8 {
		kek.block.Encrypt(wrapped[i:i+8], k[i:i+8])
	}
	kcv, _ = hex.DecodeString(e.info.KCV)
	m.log.Info("key exported", "name", name, "usage", string(e.info.Usage), "kcv", e.info.KCV, "wrap", wrapName, "wrap_kcv", kek.info.KCV)
	return wrapped, kcv, nil
}

// Generate stores a fresh random double-length key with odd DES parity (hardware HSMs and
// some bank hosts refuse even-parity keys).
func (m *Soft) Generate(name string, usage Usage) (KeyInfo, error) {
	k := make([]byte, 16)
	defer wipe(k)
	if _, err := rand.Read(k); err != nil {
		return KeyInfo{}, fmt.Errorf("hsm: generate %s: %w", name, err)
	}
	for i, b := range k {
		b &^= 1
		if parity(b) == 0 {
			b |= 1
		}
		k[i] = b
	}
	e, err := m.newEntry(name, usage, k)
	if err != nil {
		return KeyInfo{}, err
	}
	old, err := m.store(e)
	if err != nil {
		return KeyInfo{}, err
	}
	m.logLoaded("key generated", e, old)
	return e.info, nil
}

// parity is the number of set bits of b, modulo 2.
func parity(b byte) byte {
	b ^= b >> 4
	b ^= b >> 2
	b ^= b >> 1
	return b & 1
}

// Info describes the named key.
func (m *Soft) Info(name string) (KeyInfo, error) {
	m.mu.RLock()
	e := m.keys[name]
	m.mu.RUnlock()
	if e == nil {
		return KeyInfo{}, fmt.Errorf("hsm: key %q: %w", name, ErrNoKey)
	}
	return e.info, nil
}

// List describes every key, sorted by name.
func (m *Soft) List() []KeyInfo {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.listLocked()
}

func (m *Soft) listLocked() []KeyInfo {
	out := make([]KeyInfo, 0, len(m.keys))
	for _, e := range m.keys {
		out = append(out, e.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
