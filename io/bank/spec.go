package bank

import (
	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/padding"
	"github.com/moov-io/iso8583/prefix"

	"github.com/quancun/quancun/io/bcd"
)

// CUPSSpec is the CUPS POS field table of card-and-host.md 7.2 with io/bcd's codecs. Treat it
// as a constant: dialects share it.
var CUPSSpec = NewSpec("CUPS POS", bcd.LBCD, bcd.Track, bcd.Prefix)

// NewSpec builds the CUPS POS field table (card-and-host.md 7.2) around the given BCD codecs:
// n packs numeric fields, z the track fields, p the length prefixes. Production uses io/bcd;
// benchmarks build the same table from the library's stock codecs to compare.
//
// Encodings: n is packed BCD, odd lengths left-aligned with a trailing 0 nibble (F22 "021" ->
// 02 10, F2 of 19 digits -> 10 bytes); LL/LLL prefixes are BCD (1/2 bytes) and count digits
// for n and z, bytes for an/ans/b; an/ans are ASCII right-padded with spaces; b is binary.
// Numeric fields are strings, never integers, so a STAN keeps its leading zeros end to end.
func NewSpec(name string, n, z encoding.Encoder, p prefix.Prefixers) *iso8583.MessageSpec {
	num := func(length int, desc string) field.Field {
		return field.NewString(&field.Spec{Length: length, Description: desc, Enc: n, Pref: p.Fixed})
	}
	lnum := func(pref prefix.Prefixer, max int, desc string) field.Field {
		return field.NewString(&field.Spec{Length: max, Description: desc, Enc: n, Pref: pref})
	}
	track := func(pref prefix.Prefixer, max int, desc string) field.Field {
		return field.NewString(&field.Spec{Length: max, Description: desc, Enc: z, Pref: pref})
	}
	ans := func(length int, desc string) field.Field {
		return field.NewString(&field.Spec{Length: length, Description: desc, Enc: encoding.ASCII,
			Pref: p.Fixed, Pad: padding.Right(' ')})
	}
	lans := func(pref prefix.Prefixer, max int, desc string) field.Field {
		return field.NewString(&field.Spec{Length: max, Description: desc, Enc: encoding.ASCII, Pref: pref})
	}
	bin := func(length int, desc string) field.Field {
		return field.NewBinary(&field.Spec{Length: length, Description: desc, Enc: encoding.Binary, Pref: p.Fixed})
	}
	lbin := func(pref prefix.Prefixer, max int, desc string) field.Field {
		return field.NewBinary(&field.Spec{Length: max, Description: desc, Enc: encoding.Binary, Pref: pref})
	}
	return &iso8583.MessageSpec{
		Name: name,
		Fields: map[int]field.Field{
			0: num(4, "Message Type Indicator"),
			1: field.NewBitmap(&field.Spec{Length: 8, Description: "Bitmap", Enc: encoding.Binary,
				Pref: prefix.Binary.Fixed, DisableAutoExpand: true}),
			2:  lnum(p.LL, 19, "Primary Account Number"),
			3:  num(6, "Processing Code"),
			4:  num(12, "Amount, Transaction (fen)"),
			11: num(6, "System Trace Audit Number"),
			12: num(6, "Local Transaction Time hhmmss"),
			13: num(4, "Local Transaction Date MMDD"),
			14: num(4, "Expiration Date YYMM"),
			15: num(4, "Settlement Date MMDD"),
			22: num(3, "POS Entry Mode"),
			23: num(3, "Card Sequence Number"),
			25: num(2, "POS Condition Code"),
			26: num(2, "POS PIN Capture Code"),
			32: lnum(p.LL, 11, "Acquiring Institution Identification Code"),
			35: track(p.LL, 37, "Track 2 Data"),
			36: track(p.LLL, 104, "Track 3 Data"),
			37: ans(12, "Retrieval Reference Number"),
			38: ans(6, "Authorization Identification Response"),
			39: ans(2, "Response Code"),
			41: ans(8, "Card Acceptor Terminal Identification"),
			42: ans(15, "Card Acceptor Identification Code"),
			44: lans(p.LL, 25, "Additional Response Data"),
			48: lnum(p.LLL, 322, "Additional Data - Private"),
			49: ans(3, "Currency Code, Transaction"),
			52: bin(8, "PIN Data"),
			53: num(16, "Security Related Control Information"),
			54: lans(p.LLL, 20, "Additional Amounts"),
			55: lbin(p.LLL, 255, "ICC System Related Data"),
			60: lnum(p.LLL, 17, "Reserved Private: type, batch, network management code"),
			61: lnum(p.LLL, 29, "Original Message"),
			62: lbin(p.LLL, 512, "Reserved Private: working keys"),
			63: lans(p.LLL, 163, "Reserved Private"),
			64: bin(8, "Message Authentication Code"),
		},
	}
}
