package kiosk

import "testing"

type notKiosk struct{}

func (notKiosk) Kind() Kind { return 0 }

func TestEnvelopeOf(t *testing.T) {
	req := &Load{Envelope: Envelope{Trace: "000123", Terminal: "KIOSK001"}}
	if e := EnvelopeOf(req); e == nil || e.Trace != "000123" || e != &req.Envelope {
		t.Fatalf("request envelope: %+v", e)
	}
	resp := &ConfirmResponse{Envelope: Envelope{Trace: "000124"}}
	if e := EnvelopeOf(resp); e == nil || e.Trace != "000124" {
		t.Fatalf("response envelope: %+v", e)
	}
	if e := EnvelopeOf(notKiosk{}); e != nil {
		t.Fatalf("foreign message: %+v, want nil", e)
	}
}
