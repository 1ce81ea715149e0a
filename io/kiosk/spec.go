package kiosk

import (
	"github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/prefix"

	"github.com/quancun/quancun/io/bcd"
)

// Field numbers this link uses. Private fields (45-47, 56-63) carry the card side of a load
// in fixed binary layouts (layout.go) because the card's MACs are computed over those exact
// bytes; re-encoding them as text would only add a way to get them wrong.
const (
	fPAN        = 2
	fProc       = 3
	fAmount     = 4
	fTrace      = 11
	fTime       = 12
	fDate       = 13
	fExpiry     = 14
	fEntryMode  = 22
	fCardSeq    = 23
	fTrack2     = 35
	fRRN        = 37
	fAuthCode   = 38
	fResult     = 39
	fTerminal   = 41
	fPSAM       = 42
	fCardID     = 45
	fEvidence   = 46
	fWrite      = 47
	fReference  = 48
	fPINBlock   = 52
	fICC        = 55
	fText       = 56
	fInit       = 57
	fBankCode   = 58
	fCredit     = 59
	fReserved60 = 60
	fPending    = 61
	fKeys       = 62
	fMAC        = 64
)

func num(n int, desc string) field.Field {
	return field.NewString(&field.Spec{Length: n, Description: desc, Enc: bcd.LBCD, Pref: bcd.Prefix.Fixed})
}

func llnum(n int, desc string) field.Field {
	return field.NewString(&field.Spec{Length: n, Description: desc, Enc: bcd.LBCD, Pref: bcd.Prefix.LL})
}

func lllnum(n int, desc string) field.Field {
	return field.NewString(&field.Spec{Length: n, Description: desc, Enc: bcd.LBCD, Pref: bcd.Prefix.LLL})
}

func ans(n int, desc string) field.Field {
	return field.NewString(&field.Spec{Length: n, Description: desc, Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed})
}

func bin(n int, desc string) field.Field {
	return field.NewBinary(&field.Spec{Length: n, Description: desc, Enc: encoding.Binary, Pref: prefix.Binary.Fixed})
}

func lllbin(n int, desc string) field.Field {
	return field.NewBinary(&field.Spec{Length: n, Description: desc, Enc: encoding.Binary, Pref: bcd.Prefix.LLL})
}

// Spec is the kiosk link's ISO 8583 message format: MTI n4 BCD, one 8-byte binary bitmap,
// numerics left-aligned packed BCD (CUPS POS convention, odd lengths end in a 0 nibble),
// LL/LLL prefixes BCD counting digits for n/z and bytes for b. It is a value, not code, so a
// reviewer reads the whole format here and docs/protocols/kiosk.md repeats it field by field.
// NewSpec returns a fresh copy: moov specs hold field prototypes, and we keep no shared
// mutable state between packages.
func NewSpec() *iso8583.MessageSpec {
	return &iso8583.MessageSpec{
		Name: "quancun kiosk link v1",
		Fields: map[int]field.Field{
			0: field.NewString(&field.Spec{Length: 4, Description: "Message Type Indicator", Enc: bcd.BCD, Pref: bcd.Prefix.Fixed}),
			1: field.NewBitmap(&field.Spec{Length: 8, Description: "Bitmap", Enc: encoding.Binary, Pref: prefix.Binary.Fixed,
				DisableAutoExpand: true}),
			fPAN:        llnum(19, "Bank card PAN"),
			fProc:       num(6, "Processing code"),
			fAmount:     num(12, "Load amount, fen"),
			fTrace:      num(6, "Kiosk trace number"),
			fTime:       num(6, "Time hhmmss"),
			fDate:       num(8, "Date YYYYMMDD"),
			fExpiry:     num(4, "Bank card expiry YYMM"),
			fEntryMode:  num(3, "POS entry mode"),
			fCardSeq:    num(3, "Bank card sequence number"),
			fTrack2:     field.NewString(&field.Spec{Length: 37, Description: "Track 2", Enc: bcd.Track, Pref: bcd.Prefix.LL}),
			fRRN:        ans(12, "Bank retrieval reference number"),
			fAuthCode:   ans(6, "Bank authorisation code"),
			fResult:     ans(2, "Response code"),
			fTerminal:   ans(8, "Kiosk terminal id"),
			fPSAM:       bin(6, "PSAM number (terminal number of PSAM file 0016)"),
			fCardID:     lllbin(32, "E-purse card identity"),
			fEvidence:   lllbin(64, "U-resolution evidence"),
			fWrite:      lllbin(32, "Card write result"),
			fReference:  num(20, "Platform reference number"),
			fPINBlock:   bin(8, "PIN block, ISO 9564 format 0 under the kiosk PIK"),
			fICC:        lllbin(255, "Bank card ICC data (passed to the bank as is)"),
			fText:       field.NewString(&field.Spec{Length: 200, Description: "Reason text, UTF-8", Enc: encoding.Binary, Pref: bcd.Prefix.LLL}),
			fInit:       lllbin(32, "INITIALIZE FOR LOAD result"),
			fBankCode:   ans(10, "Bank code"),
			fCredit:     lllbin(32, "CREDIT FOR LOAD data: host date/time, MAC2"),
			fReserved60: lllnum(11, "60.1 reserved 00, 60.2 batch n6, 60.3 network management code n3"),
			fPending:    lllbin(999, "Pending loads of the card"),
			fKeys:       lllbin(64, "Working keys under the kiosk TMK"),
			fMAC:        bin(8, "MAC"),
		},
	}
}

// Kind names one message of the link: a request or a response.
type Kind int

// The messages of the kiosk link.
const (
	KindSignIn Kind = iota + 1
	KindSignInResponse
	KindSignOut
	KindSignOutResponse
	KindHeartbeat
	KindHeartbeatResponse
	KindLoad
	KindLoadResponse
	KindConfirm
	KindConfirmResponse
	KindPendingQuery
	KindPendingResponse
	KindRewrite
	KindRewriteResponse
	KindResolve
	KindResolveResponse
)

// kindSpec is one row of the message table: how a message is recognised (MTI plus F3 for
// business messages, MTI plus 60.3 for network management) and which fields it may carry.
// Unpack refuses a message with a field outside Mandatory+Conditional or without a
// Mandatory one, so the table is the contract, not commentary.
type kindSpec struct {
	Kind        Kind
	Name        string
	MTI         string
	Proc        string // F3, business messages
	Net         string // 60.3, network management messages
	Request     bool
	Mandatory   []int
	Conditional []int
}

// Network management codes in 60.3 (CUPS POS usage, spec 7.6).
const (
	netSignIn    = "003"
	netSignOut   = "002"
	netHeartbeat = "301"
)

// Processing codes in F3 of business messages.
const (
	procLoad    = "600000"
	procPending = "310000"
	procRewrite = "610000"
	procResolve = "620000"
)

var (
	reqNet  = []int{fTrace, fTime, fDate, fTerminal, fPSAM, fReserved60, fMAC}
	respNet = []int{fTrace, fTime, fDate, fResult, fTerminal, fPSAM, fReserved60}
)

// kindTable is the message table (docs/protocols/kiosk.md section 4 prints it). Like
// linkSpec it is read-only after package initialisation.
var kindTable = [...]kindSpec{
	{KindSignIn, "SIGN-IN", "0800", "", netSignIn, true, reqNet, nil},
	{KindSignInResponse, "SIGN-IN RESPONSE", "0810", "", netSignIn, false, respNet, []int{fText, fKeys, fMAC}},
	{KindSignOut, "SIGN-OUT", "0820", "", netSignOut, true, reqNet, nil},
	{KindSignOutResponse, "SIGN-OUT RESPONSE", "0830", "", netSignOut, false, respNet, []int{fText, fMAC}},
	{KindHeartbeat, "HEARTBEAT", "0820", "", netHeartbeat, true, reqNet, nil},
	{KindHeartbeatResponse, "HEARTBEAT RESPONSE", "0830", "", netHeartbeat, false, respNet, []int{fText, fMAC}},
	{KindLoad, "LOAD REQUEST", "0200", procLoad, "", true,
		[]int{fProc, fAmount, fTrace, fTime, fDate, fTerminal, fPSAM, fCardID, fInit, fBankCode, fReserved60, fMAC},
		[]int{fPAN, fExpiry, fEntryMode, fCardSeq, fTrack2, fPINBlock, fICC}},
	{KindLoadResponse, "LOAD RESPONSE", "0210", procLoad, "", false,
		[]int{fProc, fAmount, fTrace, fTime, fDate, fResult, fTerminal, fPSAM, fReserved60},
		[]int{fRRN, fAuthCode, fReference, fText, fCredit, fMAC}},
	{KindConfirm, "LOAD CONFIRM", "0220", procLoad, "", true,
		[]int{fProc, fAmount, fTrace, fTime, fDate, fTerminal, fPSAM, fWrite, fReference, fReserved60, fMAC}, nil},
	{KindConfirmResponse, "CONFIRM RESPONSE", "0230", procLoad, "", false,
		[]int{fProc, fTrace, fTime, fDate, fResult, fTerminal, fPSAM, fReference, fReserved60},
		[]int{fText, fMAC}},
	{KindPendingQuery, "PENDING QUERY", "0100", procPending, "", true,
		[]int{fProc, fTrace, fTime, fDate, fTerminal, fPSAM, fCardID, fReserved60, fMAC}, nil},
	{KindPendingResponse, "PENDING RESPONSE", "0110", procPending, "", false,
		[]int{fProc, fTrace, fTime, fDate, fResult, fTerminal, fPSAM, fCardID, fReserved60},
		[]int{fText, fPending, fMAC}},
	{KindRewrite, "RE-WRITE REQUEST", "0200", procRewrite, "", true,
		[]int{fProc, fAmount, fTrace, fTime, fDate, fTerminal, fPSAM, fCardID, fReference, fInit, fReserved60, fMAC}, nil},
	{KindRewriteResponse, "RE-WRITE RESPONSE", "0210", procRewrite, "", false,
		[]int{fProc, fAmount, fTrace, fTime, fDate, fResult, fTerminal, fPSAM, fReference, fReserved60},
		[]int{fText, fCredit, fMAC}},
	{KindResolve, "U RESOLUTION", "0220", procResolve, "", true,
		[]int{fProc, fAmount, fTrace, fTime, fDate, fTerminal, fPSAM, fCardID, fEvidence, fReference, fReserved60, fMAC}, nil},
	{KindResolveResponse, "U RESOLUTION RESPONSE", "0230", procResolve, "", false,
		[]int{fProc, fTrace, fTime, fDate, fResult, fTerminal, fPSAM, fReference, fReserved60},
		[]int{fText, fMAC}},
}

// linkSpec is the one spec every message of this package is packed with; moov only reads it.
var linkSpec = NewSpec()

func (k Kind) spec() (kindSpec, bool) {
	for _, s := range kindTable {
		if s.Kind == k {
			return s, true
		}
	}
	return kindSpec{}, false
}

func (k Kind) String() string {
	if s, ok := k.spec(); ok {
		return s.Name
	}
	return "unknown kiosk message"
}
