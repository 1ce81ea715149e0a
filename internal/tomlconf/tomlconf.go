// Package tomlconf is the strict TOML decoding every config file of quancun shares: an
// unknown key is an error, because a misspelt key that is silently ignored turns a fault
// off, unblocks a card or leaves a timeout at its default without anyone noticing.
package tomlconf

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/BurntSushi/toml"
)

// ErrUnknownKeys reports keys in the file that the config does not have.
var ErrUnknownKeys = errors.New("unknown keys")

// Decode decodes b into v and refuses keys v does not have, naming them.
func Decode(b []byte, v any) error {
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(v)
	if err != nil {
		return err
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("%w %s", ErrUnknownKeys, strings.Join(keys, ", "))
	}
	return nil
}

// Read reads the file at path.
func Read(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return b, nil
}

// Beside resolves a relative path in a config file against the file's folder, so a
// config works from any working directory; absolute and empty paths stay as they are.
func Beside(configPath, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(configPath), p)
}
