package hsm

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// keyFileVersion is bumped when the key file's meaning changes.
const keyFileVersion = 1

// maxKeyFile bounds what LoadKeys reads: a key file holds dozens of keys, not megabytes.
const maxKeyFile = 1 << 20

// keyFile is the JSON key file (docs/security-module.md). Keys are wrapped under the master
// key, so the file is as safe to back up as the master key is secret.
type keyFile struct {
	Version   int           `json:"version"`
	MasterKCV string        `json:"master_kcv"`
	Keys      []keyFileItem `json:"keys"`
}

type keyFileItem struct {
	Name  string `json:"name"`
	Usage Usage  `json:"usage"`
	Key   string `json:"key"` // hex, 3DES-ECB under the master key
	KCV   string `json:"kcv"` // 8 upper-case hex characters of the clear key
}

// SaveKeys writes every key, wrapped under the master key with its KCV, as JSON sorted by
// name, so the same keys always give the same bytes.
func (m *Soft) SaveKeys(w io.Writer) error {
	f := keyFile{Version: keyFileVersion, MasterKCV: m.masterKCV, Keys: []keyFileItem{}}
	m.mu.RLock()
	for _, info := range m.listLocked() {
		e := m.keys[info.Name]
		f.Keys = append(f.Keys, keyFileItem{Name: info.Name, Usage: info.Usage, Key: strings.ToUpper(hex.EncodeToString(e.wrapped)), KCV: info.KCV})
	}
	m.mu.RUnlock()
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("hsm: save keys: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("hsm: save keys: %w", err)
	}
	m.log.Info("key file saved", "keys", len(f.Keys), "master_kcv", m.masterKCV)
	return nil
}

// LoadKeys reads a file written by SaveKeys under the same master key. Every key is unwrapped
// and its KCV checked before any is stored: a file with one bad key is refused whole (the
// error names the key, errors.Is ErrKCVMismatch) and the module is left unchanged. Keys in
// the file replace held keys of the same name; other held keys stay.
func (m *Soft) LoadKeys(r io.Reader) error {
	dec := json.NewDecoder(io.LimitReader(r, maxKeyFile))
	dec.DisallowUnknownFields()
	var f keyFile
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("hsm: key file: %w: %w", ErrInput, err)
	}
	if f.Version != keyFileVersion {
		return fmt.Errorf("hsm: key file version %d, want %d: %w", f.Version, keyFileVersion, ErrInput)
	}
	if f.MasterKCV != m.masterKCV {
		return fmt.Errorf("hsm: key file was written under master key %q, this module's is %s: %w", f.MasterKCV, m.masterKCV, ErrKCVMismatch)
	}
	entries := make([]*entry, 0, len(f.Keys))
	seen := make(map[string]bool, len(f.Keys))
	for i, it := range f.Keys {
		e, err := m.fileEntry(it)
		if err != nil {
			return fmt.Errorf("hsm: key file entry %d: %w", i, err)
		}
		if seen[it.Name] {
			return fmt.Errorf("hsm: key file entry %d: key %s appears twice: %w", i, it.Name, ErrInput)
		}
		seen[it.Name] = true
		entries = append(entries, e)
	}
	m.mu.Lock()
	for _, e := range entries {
		if old := m.keys[e.info.Name]; old != nil && old.info.Usage != e.info.Usage {
			m.mu.Unlock()
			return fmt.Errorf("hsm: key file: key %s is %s here, %s in the file: %w", e.info.Name, old.info.Usage, e.info.Usage, ErrWrongUsage)
		}
	}
	for _, e := range entries {
		m.keys[e.info.Name] = e
	}
	m.mu.Unlock()
	for _, e := range entries {
		m.logLoaded("key loaded", e, nil, "source", "key file")
	}
	m.log.Info("key file loaded", "keys", len(entries), "master_kcv", m.masterKCV)
	return nil
}

// fileEntry unwraps one key file item and checks its KCV.
func (m *Soft) fileEntry(it keyFileItem) (*entry, error) {
	if err := checkName(it.Name); err != nil {
		return nil, err
	}
	wrapped, err := hex.DecodeString(it.Key)
	if err != nil || len(wrapped) == 0 || len(wrapped)%8 != 0 {
		return nil, fmt.Errorf("hsm: key %s: key must be hex of 8 or 16 bytes: %w", it.Name, errors.Join(ErrInput, err))
	}
	k := m.unwrap(&entry{wrapped: wrapped})
	defer wipe(k)
	e, err := m.newEntry(it.Name, it.Usage, k)
	if err != nil {
		return nil, err
	}
	if len(it.KCV) != 8 || !strings.EqualFold(it.KCV, e.info.KCV) {
		m.log.Warn("key file refused: KCV mismatch", "name", it.Name, "kcv_file", it.KCV, "kcv_computed", e.info.KCV)
		return nil, fmt.Errorf("hsm: key %s: file says KCV %q, key gives %s: %w", it.Name, it.KCV, e.info.KCV, ErrKCVMismatch)
	}
	return e, nil
}
