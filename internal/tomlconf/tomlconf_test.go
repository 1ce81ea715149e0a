package tomlconf

import (
	"errors"
	"strings"
	"testing"
)

type conf struct {
	Listen string `toml:"listen"`
	Sub    struct {
		N int `toml:"n"`
	} `toml:"sub"`
}

func TestDecode(t *testing.T) {
	var c conf
	if err := Decode([]byte("listen = \"x\"\n[sub]\nn = 3\n"), &c); err != nil || c.Listen != "x" || c.Sub.N != 3 {
		t.Fatalf("Decode = %+v, %v", c, err)
	}
	err := Decode([]byte("listn = \"x\"\n[sub]\nm = 1\n"), &c)
	if !errors.Is(err, ErrUnknownKeys) || !strings.Contains(err.Error(), "listn") || !strings.Contains(err.Error(), "sub.m") {
		t.Fatalf("unknown keys: %v", err)
	}
	if err := Decode([]byte("listen = "), &c); err == nil {
		t.Fatal("syntax error accepted")
	}
}

func TestBeside(t *testing.T) {
	for _, c := range []struct{ cfg, p, want string }{
		{"/etc/q/bank.toml", "data", "/etc/q/data"},
		{"/etc/q/bank.toml", "/var/data", "/var/data"},
		{"bank.toml", "data", "data"},
		{"/etc/q/bank.toml", "", ""},
	} {
		if got := Beside(c.cfg, c.p); got != c.want {
			t.Errorf("Beside(%q, %q) = %q, want %q", c.cfg, c.p, got, c.want)
		}
	}
}
