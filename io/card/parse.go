package card

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/quancun/quancun/io/apdu"
)

// TxnTypeEPLoad is the transaction type of an e-purse load (spec 0), in INIT FOR LOAD's P2,
// in MAC/TAC input and in 0018 records.
const TxnTypeEPLoad byte = 0x02

// FCI is what SELECT of the EP application returns (spec 1.1).
type FCI struct {
	DFName     []byte // tag 84
	AppVersion byte   // tag 9F08, 0 when absent
	EF15       []byte // tag 9F0C: a copy of file 0015, nil when the card does not send one
}

// ParseFCI decodes a 6F template: 84 DF name and A5 proprietary data with 9F08 and 9F0C.
// Unknown tags are skipped, as ISO 7816-4 asks of a terminal.
func ParseFCI(b []byte) (FCI, error) {
	outer, err := parseTLVs(b)
	if err != nil {
		return FCI{}, err
	}
	fci6F, ok := outer[0x6F]
	if !ok || len(outer) != 1 {
		return FCI{}, fmt.Errorf("%w: FCI is not one 6F template", ErrBadResponse)
	}
	in, err := parseTLVs(fci6F)
	if err != nil {
		return FCI{}, err
	}
	var f FCI
	f.DFName = in[0x84]
	if a5, ok := in[0xA5]; ok {
		prop, err := parseTLVs(a5)
		if err != nil {
			return FCI{}, err
		}
		if v, ok := prop[0x9F08]; ok && len(v) == 1 {
			f.AppVersion = v[0]
		}
		f.EF15 = prop[0x9F0C]
	}
	return f, nil
}

// parseTLVs reads a flat BER-TLV list (tags of 1 or 2 bytes, lengths of 1 to 3 bytes) into a
// map; a repeated tag keeps its first value.
func parseTLVs(b []byte) (map[uint16][]byte, error) {
	out := map[uint16][]byte{}
	for len(b) > 0 {
		if b[0] == 0x00 || b[0] == 0xFF { // padding between objects
			b = b[1:]
			continue
		}
		tag := uint16(b[0])
		b = b[1:]
		if tag&0x1F == 0x1F {
			if len(b) == 0 || b[0]&0x80 != 0 {
				return nil, fmt.Errorf("%w: bad TLV tag", ErrBadResponse)
			}
			tag = tag<<8 | uint16(b[0])
			b = b[1:]
		}
		if len(b) == 0 {
			return nil, fmt.Errorf("%w: TLV %X without length", ErrBadResponse, tag)
		}
		n := int(b[0])
		b = b[1:]
		switch n {
		case 0x81:
			if len(b) < 1 {
				return nil, fmt.Errorf("%w: TLV %X length cut", ErrBadResponse, tag)
			}
			n, b = int(b[0]), b[1:]
		case 0x82:
			if len(b) < 2 {
				return nil, fmt.Errorf("%w: TLV %X length cut", ErrBadResponse, tag)
			}
			n, b = int(binary.BigEndian.Uint16(b)), b[2:]
		default:
			if n > 0x7F {
				return nil, fmt.Errorf("%w: TLV %X length form %02X", ErrBadResponse, tag, n)
			}
		}
		if n > len(b) {
			return nil, fmt.Errorf("%w: TLV %X wants %d bytes, %d left", ErrBadResponse, tag, n, len(b))
		}
		if _, dup := out[tag]; !dup {
			out[tag] = append([]byte(nil), b[:n]...)
		}
		b = b[n:]
	}
	return out, nil
}

// EF15Len is the length of file 0015 on a MOHURD city card.
const EF15Len = 30

// AppInfo is file 0015 of a MOHURD city card (spec 1.2a). Codes stay as the card's bytes
// because they feed key diversification; dates are the BCD digits as text ("20240101").
type AppInfo struct {
	IssuerCode       [2]byte
	CityCode         [2]byte
	IndustryCode     [2]byte
	AppType          byte // application type / enable flag
	AppVersion       byte
	InterconnectCode [2]byte
	AppSerial        [8]byte // card number; the diversification factor of the card keys
	StartDate        string
	ExpiryDate       string
	CardType         byte
	CardSubType      byte
}

// ParseEF15 decodes the 30 bytes of file 0015 (MOHURD layout).
func ParseEF15(b []byte) (AppInfo, error) {
	if len(b) != EF15Len {
		return AppInfo{}, fmt.Errorf("%w: 0015 is %d bytes, want %d", ErrBadResponse, len(b), EF15Len)
	}
	var a AppInfo
	copy(a.IssuerCode[:], b[0:2])
	copy(a.CityCode[:], b[2:4])
	copy(a.IndustryCode[:], b[4:6])
	a.AppType, a.AppVersion = b[8], b[9]
	copy(a.InterconnectCode[:], b[10:12])
	copy(a.AppSerial[:], b[12:20])
	a.StartDate = strings.ToUpper(hex.EncodeToString(b[20:24]))
	a.ExpiryDate = strings.ToUpper(hex.EncodeToString(b[24:28]))
	a.CardType, a.CardSubType = b[28], b[29]
	return a, nil
}

// ParseBalance decodes GET BALANCE data: 4 bytes, unsigned big-endian fen.
func ParseBalance(b []byte) (uint32, error) {
	if len(b) != 4 {
		return 0, fmt.Errorf("%w: balance is %d bytes, want 4", ErrBadResponse, len(b))
	}
	return binary.BigEndian.Uint32(b), nil
}

// InitLoadResponse is the answer to INITIALIZE FOR LOAD (spec 2.1).
type InitLoadResponse struct {
	OldBalance uint32
	Serial     uint16 // online serial before this load; the credit will consume it
	KeyVersion byte
	AlgID      byte
	Random     [4]byte
	MAC1       [4]byte
}

// ParseInitLoadResponse decodes the 16 data bytes of INITIALIZE FOR LOAD.
func ParseInitLoadResponse(b []byte) (InitLoadResponse, error) {
	if len(b) != 16 {
		return InitLoadResponse{}, fmt.Errorf("%w: INITIALIZE FOR LOAD returned %d bytes, want 16", ErrBadResponse, len(b))
	}
	r := InitLoadResponse{
		OldBalance: binary.BigEndian.Uint32(b[0:4]),
		Serial:     binary.BigEndian.Uint16(b[4:6]),
		KeyVersion: b[6],
		AlgID:      b[7],
	}
	copy(r.Random[:], b[8:12])
	copy(r.MAC1[:], b[12:16])
	return r, nil
}

// ParseTAC decodes CREDIT FOR LOAD data: the 4-byte TAC.
func ParseTAC(b []byte) ([4]byte, error) {
	var tac [4]byte
	if len(b) != 4 {
		return tac, fmt.Errorf("%w: TAC is %d bytes, want 4", ErrBadResponse, len(b))
	}
	copy(tac[:], b)
	return tac, nil
}

// TransactionProve is the evidence GET TRANSACTION PROVE gives: for a load, the MAC2 the
// card accepted (when the COS returns it) and the TAC it computed.
type TransactionProve struct {
	MAC    [4]byte
	HasMAC bool
	TAC    [4]byte
}

// ParseTransactionProve accepts the answers seen on real COSes (spec 2.6): 8 bytes MAC||TAC
// with 9000, 4 bytes TAC with 9000, and SW 9406 with 4 or 8 bytes, which means "TAC only"
// (the first 4 of 8 bytes are then not a MAC the terminal may rely on). Other SWs are a
// *apdu.StatusError.
func ParseTransactionProve(r apdu.Response) (TransactionProve, error) {
	var p TransactionProve
	switch r.SW {
	case apdu.SW9000, apdu.SW9406:
	default:
		return p, &apdu.StatusError{SW: r.SW, Cmd: cmdProve}
	}
	switch len(r.Data) {
	case 8:
		copy(p.MAC[:], r.Data[:4])
		copy(p.TAC[:], r.Data[4:])
		p.HasMAC = r.SW == apdu.SW9000
	case 4:
		copy(p.TAC[:], r.Data)
	default:
		if r.SW == apdu.SW9406 {
			return p, &apdu.StatusError{SW: r.SW, Cmd: cmdProve}
		}
		return p, fmt.Errorf("%w: GET TRANSACTION PROVE returned %d bytes", ErrBadResponse, len(r.Data))
	}
	return p, nil
}

// LogRecordLen is the length of one 0018 record.
const LogRecordLen = 23

// LogRecord is one 0018 transaction-log record (spec 1.5).
type LogRecord struct {
	Serial    uint16 // the online or offline serial BEFORE the transaction incremented it
	Overdraft uint32 // 3 bytes on the card
	Amount    uint32
	Type      byte
	TermID    [6]byte
	DateTime  [7]byte // YYYYMMDDhhmmss BCD
}

// ParseLogRecord decodes one 23-byte 0018 record.
func ParseLogRecord(b []byte) (LogRecord, error) {
	if len(b) != LogRecordLen {
		return LogRecord{}, fmt.Errorf("%w: 0018 record is %d bytes, want %d", ErrBadResponse, len(b), LogRecordLen)
	}
	r := LogRecord{
		Serial:    binary.BigEndian.Uint16(b[0:2]),
		Overdraft: uint32(b[2])<<16 | uint32(b[3])<<8 | uint32(b[4]),
		Amount:    binary.BigEndian.Uint32(b[5:9]),
		Type:      b[9],
	}
	copy(r.TermID[:], b[10:16])
	copy(r.DateTime[:], b[16:23])
	return r, nil
}

// Bytes encodes the record as the card stores it (used by the virtual card).
func (r LogRecord) Bytes() []byte {
	b := make([]byte, LogRecordLen)
	binary.BigEndian.PutUint16(b[0:2], r.Serial)
	b[2], b[3], b[4] = byte(r.Overdraft>>16), byte(r.Overdraft>>8), byte(r.Overdraft)
	binary.BigEndian.PutUint32(b[5:9], r.Amount)
	b[9] = r.Type
	copy(b[10:16], r.TermID[:])
	copy(b[16:23], r.DateTime[:])
	return b
}
