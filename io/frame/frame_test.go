package frame

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	for _, p := range [][]byte{{1}, bytes.Repeat([]byte{7}, 300), bytes.Repeat([]byte{9}, MaxPayload)} {
		if err := Write(&buf, p); err != nil {
			t.Fatal(err)
		}
		got, err := Read(&buf, 0)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("len %d: got %d bytes, %v", len(p), len(got), err)
		}
	}
	if _, err := Read(&buf, 0); err != io.EOF {
		t.Fatalf("empty stream: %v, want io.EOF", err)
	}
}

func TestErrors(t *testing.T) {
	if _, err := Read(bytes.NewReader([]byte{0, 5, 1, 2}), 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short frame: %v", err)
	}
	if _, err := Read(bytes.NewReader([]byte{1, 0, 1}), 100); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over limit: %v", err)
	}
	if _, err := Read(bytes.NewReader([]byte{0, 0}), 0); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	if err := Write(io.Discard, make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("write too large: %v", err)
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := Read(bytes.NewReader(in), 4096)
		if err != nil {
			return
		}
		out, err := Append(nil, p)
		if err != nil || !bytes.Equal(out, in[:len(out)]) {
			t.Fatalf("re-frame mismatch")
		}
	})
}
