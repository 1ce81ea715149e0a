// Package kiosk is the wire format of the kiosk <-> FEP link: ISO 8583 behind a POS-style
// TPDU and header, BCD numerics, 2-byte length framing (io/frame), every request MACed by the
// kiosk's PSAM and every response by the kiosk's MAK. docs/protocols/kiosk.md is the
// document a kiosk maker builds from; this package is its executable form.
//
// The format is data: NewSpec is the moov MessageSpec, kindTable says which fields each
// message carries, the layouts in layout.go give the private binary fields byte by byte,
// and Codes is the response code table. Messages are typed structs with Pack and Unpack.
//
// The package holds no keys and does no I/O: MACs come from a RequestMACer (PSAM / security
// module) or ResponseMACer (MAK holder). Unpack never checks a MAC; ReadRequest and
// ReadResponse unpack and verify in one step and are what a link should call. String
// methods mask PANs 6+4 and never print PIN blocks or track 2.
package kiosk
