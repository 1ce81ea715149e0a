package persistence

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// TestStoreMatchesMapModel runs random commits (sets and deletes), gets, scans and
// reopens against a map, the model of what the store must hold.
func TestStoreMatchesMapModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		dir := t.TempDir()
		s, err := Open(dir, testOptions())
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		model := map[string]string{}
		// A small key space so sets, overwrites and deletes of the same keys collide.
		genKey := rapid.Custom(func(t *rapid.T) []byte {
			return Key(rapid.SampledFrom([]string{"txn", "idx", "ctl"}).Draw(t, "table"),
				rapid.StringMatching(`[a-c\x00]{0,2}`).Draw(t, "id"))
		})
		genOp := rapid.Custom(func(t *rapid.T) Op {
			k := genKey.Draw(t, "key")
			if rapid.Bool().Draw(t, "delete") {
				return Op{Key: k, Delete: true}
			}
			return Op{Key: k, Value: []byte(rapid.String().Draw(t, "value"))}
		})
		rt.Repeat(map[string]func(*rapid.T){
			"commit": func(t *rapid.T) {
				ops := rapid.SliceOfN(genOp, 1, 6).Draw(t, "ops")
				if err := s.Commit(context.Background(), ops...); err != nil {
					t.Fatal(err)
				}
				for _, op := range ops { // later ops of one commit win, as in Badger
					if op.Delete {
						delete(model, string(op.Key))
					} else {
						model[string(op.Key)] = string(op.Value)
					}
				}
			},
			"get": func(t *rapid.T) {
				k := genKey.Draw(t, "key")
				v, err := s.Get(k)
				want, ok := model[string(k)]
				if ok != (err == nil) || string(v) != want {
					t.Fatalf("Get(%q) = %q, %v; model %q, %v", k, v, err, want, ok)
				}
			},
			"scan": func(t *rapid.T) {
				prefix := Key(rapid.SampledFrom([]string{"txn", "idx", "ctl"}).Draw(t, "table"))
				var got []string
				if err := s.Scan(prefix, func(k, v []byte) error {
					got = append(got, fmt.Sprintf("%q=%q", k, v))
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				var keys []string
				for k := range model {
					if bytes.HasPrefix([]byte(k), prefix) {
						keys = append(keys, k)
					}
				}
				slices.Sort(keys)
				var want []string
				for _, k := range keys {
					want = append(want, fmt.Sprintf("%q=%q", k, model[k]))
				}
				if !slices.Equal(got, want) {
					t.Fatalf("Scan(%q) = %v, model %v", prefix, got, want)
				}
			},
			"reopen": func(t *rapid.T) {
				// Reopen costs ~20 ms; doing it on a quarter of the draws keeps the
				// test near 5 s and still reopens several times per case.
				if rapid.IntRange(0, 3).Draw(t, "skip") != 0 {
					t.Skip("no reopen this time")
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
				if s, err = Open(dir, testOptions()); err != nil {
					t.Fatal(err)
				}
			},
		})
	})
}
