package platform

import (
	"reflect"
	"testing"
)

func seed(f *testing.F) {
	for _, s := range samples() {
		b, err := s.pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzUnpack is the receive path with the dynamic key: never a panic, and whatever is
// accepted packs again to bytes that unpack to the same message.
func FuzzUnpack(f *testing.F) {
	seed(f)
	k := SoftMAC(dk)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, m, err := Unpack(b, k)
		if err != nil {
			return
		}
		if m == nil {
			t.Fatal("nil message without error")
		}
		key := MACer(k)
		if info, ok := h.Result.Info(); ok && info.Unsigned && h.Type.IsResponse() {
			key = nil
		}
		p, err := Pack(h, m, key)
		if err != nil {
			t.Fatalf("accepted %s does not pack: %v", h.Type, err)
		}
		h2, m2, err := Unpack(p, k)
		if err != nil || h2 != h || !reflect.DeepEqual(m2, m) {
			t.Fatalf("%+v %+v became %+v %+v (%v)", h, m, h2, m2, err)
		}
	})
}

// FuzzBody reaches the body decoder past the MAC: any header type, any body bytes.
func FuzzBody(f *testing.F) {
	for _, s := range samples() {
		b, _ := s.pack()
		f.Add(byte(s.m.Type()), []byte(s.h.Result + "  ")[:2], b[headerSize:len(b)-macSize])
	}
	f.Fuzz(func(t *testing.T, typ byte, result []byte, raw []byte) {
		if len(result) < 2 {
			return
		}
		h := Header{Type: Type(typ), Result: Code(result[:2]), Time: host}
		if _, ok := h.Type.schema(); !ok {
			return
		}
		m, err := decodeBody(h, raw)
		if err != nil {
			return
		}
		if !validCode(h.Result) || (!h.Type.IsResponse() && h.Result != OK) {
			return
		}
		p, err := Pack(h, m, SoftMAC(dk))
		if err != nil {
			t.Fatalf("decoded %s does not pack: %v", h.Type, err)
		}
		_, m2, err := Unpack(p, SoftMAC(dk))
		if err != nil || !reflect.DeepEqual(m2, m) {
			t.Fatalf("%+v became %+v (%v)", m, m2, err)
		}
	})
}
