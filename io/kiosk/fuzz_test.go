package kiosk

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

// FuzzUnpack feeds arbitrary bytes to the Unpack of every message type. None may panic;
// whatever one accepts must pack again and unpack to the same value.
func FuzzUnpack(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, k := range kindTable {
			m := newMessage(k.Kind)
			if err := m.(interface{ Unpack([]byte) error }).Unpack(b); err != nil {
				continue
			}
			var p []byte
			var err error
			switch v := m.(type) {
			case Request:
				p, err = v.Pack(fixedMAC{})
			case Response:
				p, err = v.Pack(fixedMAC{})
			}
			if err != nil {
				t.Fatalf("%s unpacked but does not pack: %v", k.Name, err)
			}
			again := newMessage(k.Kind)
			if err := again.(interface{ Unpack([]byte) error }).Unpack(p); err != nil {
				t.Fatalf("%s: repacked message does not unpack: %v", k.Name, err)
			}
			again.envelope().Header = m.envelope().Header
			if !reflect.DeepEqual(again, m) {
				t.Fatalf("%s: %+v became %+v", k.Name, m, again)
			}
		}
	})
}

// FuzzReadRequest is the FEP's entry point: any bytes, never a panic, never a request
// accepted without a valid MAC.
func FuzzReadRequest(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadRequest(b, softPSAM{psamMaster})
		if err == nil && VerifyRequest(b, softPSAM{psamMaster}) != nil {
			t.Fatalf("accepted %v without a valid MAC", r.Kind())
		}
	})
}

// FuzzReadResponse is the kiosk's entry point.
func FuzzReadResponse(f *testing.F) {
	seed(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadResponse(b, softMAK{mak})
		if err == nil && r == nil {
			t.Fatal("nil response without error")
		}
	})
}
