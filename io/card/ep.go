package card

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/quancun/quancun/io/apdu"
)

// Command names used in *apdu.StatusError.
const (
	cmdSelect     = "SELECT"
	cmdReadBinary = "READ BINARY"
	cmdBalance    = "GET BALANCE"
	cmdInitLoad   = "INITIALIZE FOR LOAD"
	cmdCredit     = "CREDIT FOR LOAD"
	cmdProve      = "GET TRANSACTION PROVE"
	cmdReadRecord = "READ RECORD"
	cmdVerify     = "VERIFY"
)

// AIDMOHURD returns the AID of the MOHURD city-card EP application (spec 1.1), a fresh
// slice each time so no caller can change it for another.
func AIDMOHURD() []byte {
	return []byte{0xA0, 0x00, 0x00, 0x00, 0x03, 0x86, 0x98, 0x07, 0x01}
}

// EP is a PBOC e-purse client over a Reader. It is not safe for concurrent use: a card runs
// one command at a time and the load context lives between two of them.
type EP struct {
	r Reader
}

// NewEP returns an e-purse client on r.
func NewEP(r Reader) *EP { return &EP{r: r} }

// SelectApp selects the application by AID and returns its FCI.
func (e *EP) SelectApp(ctx context.Context, aid []byte) (FCI, error) {
	data, err := expect(ctx, e.r, cmdSelect, apdu.Command{CLA: 0x00, INS: 0xA4, P1: 0x04, P2: 0x00, Data: aid, Le: -1})
	if err != nil {
		return FCI{}, err
	}
	if len(data) == 0 {
		return FCI{}, nil // some COSes answer a bare 9000
	}
	return ParseFCI(data)
}

// ReadEF15 reads file 0015 (00 B0 95 00 1E) and decodes it.
func (e *EP) ReadEF15(ctx context.Context) (AppInfo, error) {
	data, err := expect(ctx, e.r, cmdReadBinary, apdu.Command{CLA: 0x00, INS: 0xB0, P1: 0x95, P2: 0x00, Le: EF15Len})
	if err != nil {
		return AppInfo{}, err
	}
	return ParseEF15(data)
}

// GetBalance returns the e-purse balance in fen (80 5C 00 02 04).
func (e *EP) GetBalance(ctx context.Context) (uint32, error) {
	data, err := expect(ctx, e.r, cmdBalance, apdu.Command{CLA: 0x80, INS: 0x5C, P1: 0x00, P2: 0x02, Le: 4})
	if err != nil {
		return 0, err
	}
	return ParseBalance(data)
}

// InitForLoad runs INITIALIZE FOR LOAD for an EP load (80 50 00 02 0B ... 10). The card
// keeps a volatile load context that the very next command must be CREDIT FOR LOAD to use.
func (e *EP) InitForLoad(ctx context.Context, keyIdx byte, amount uint32, termID [6]byte) (InitLoadResponse, error) {
	d := make([]byte, 11)
	d[0] = keyIdx
	binary.BigEndian.PutUint32(d[1:5], amount)
	copy(d[5:], termID[:])
	data, err := expect(ctx, e.r, cmdInitLoad, apdu.Command{CLA: 0x80, INS: 0x50, P1: 0x00, P2: TxnTypeEPLoad, Data: d, Le: 16})
	if err != nil {
		return InitLoadResponse{}, err
	}
	return ParseInitLoadResponse(data)
}

// CreditForLoad runs CREDIT FOR LOAD with the platform's date/time and MAC2 and returns the
// TAC. An error wrapping ErrCardRemoved (or any transport error) means the result is
// unknown: write status U, see ErrCardRemoved. A *apdu.StatusError means not applied.
func (e *EP) CreditForLoad(ctx context.Context, hostDateTime [7]byte, mac2 [4]byte) ([4]byte, error) {
	d := make([]byte, 0, 11)
	d = append(d, hostDateTime[:]...)
	d = append(d, mac2[:]...)
	data, err := expect(ctx, e.r, cmdCredit, apdu.Command{CLA: 0x80, INS: 0x52, P1: 0x00, P2: 0x00, Data: d, Le: 4})
	if err != nil {
		return [4]byte{}, err
	}
	return ParseTAC(data)
}

// GetTransactionProve asks for the MAC and TAC of the transaction that consumed a serial
// (80 5A 00 type 02 serial 08). Pass the card's CURRENT serial, that is the proved
// transaction's serial + 1 (spec 2.6). Decide applied/not applied from serials
// (RecoverUnknown), never from this command's SW.
func (e *EP) GetTransactionProve(ctx context.Context, txnType byte, serial uint16) (TransactionProve, error) {
	d := binary.BigEndian.AppendUint16(nil, serial)
	resp, err := exchange(ctx, e.r, apdu.Command{CLA: 0x80, INS: 0x5A, P1: 0x00, P2: txnType, Data: d, Le: 8})
	if err != nil {
		return TransactionProve{}, fmt.Errorf("%s: %w", cmdProve, err)
	}
	return ParseTransactionProve(resp)
}

// ReadRecord reads record n (1 = newest) of the 0018 log (00 B2 n C4 17). Past the last
// record it returns an error matching both ErrNoRecord and SW 6A83.
func (e *EP) ReadRecord(ctx context.Context, n byte) (LogRecord, error) {
	data, err := expect(ctx, e.r, cmdReadRecord, apdu.Command{CLA: 0x00, INS: 0xB2, P1: n, P2: 0x18<<3 | 0x04, Le: LogRecordLen})
	if err != nil {
		if sw, ok := apdu.SWOf(err); ok && sw == apdu.SW6A83 {
			return LogRecord{}, fmt.Errorf("%w: %w", ErrNoRecord, err)
		}
		return LogRecord{}, err
	}
	return ParseLogRecord(data)
}

// ReadLog reads 0018 records from the newest until the card says there are no more (at most
// 10 on a MOHURD card; max bounds the reads).
func (e *EP) ReadLog(ctx context.Context, max int) ([]LogRecord, error) {
	var out []LogRecord
	for n := 1; n <= max && n <= 255; n++ {
		r, err := e.ReadRecord(ctx, byte(n))
		if errors.Is(err, ErrNoRecord) {
			break
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

// ErrBadPIN reports a PIN that is not 2 to 12 decimal digits (checked before anything is sent).
var ErrBadPIN = errors.New("card: PIN must be 2 to 12 digits")

// Verify presents the PIN as packed BCD, odd lengths padded with F (00 20 00 00 Ln PIN).
// A wrong PIN is a *apdu.StatusError with SW 63Cx (x tries left); 6983 means blocked.
func (e *EP) Verify(ctx context.Context, pin string) error {
	if len(pin) < 2 || len(pin) > 12 {
		return ErrBadPIN
	}
	d := make([]byte, (len(pin)+1)/2)
	for i := range d {
		d[i] = 0xFF
	}
	for i := 0; i < len(pin); i++ {
		c := pin[i]
		if c < '0' || c > '9' {
			return ErrBadPIN
		}
		if i%2 == 0 {
			d[i/2] = (c-'0')<<4 | 0x0F
		} else {
			d[i/2] = d[i/2]&0xF0 | (c - '0')
		}
	}
	_, err := expect(ctx, e.r, cmdVerify, apdu.Command{CLA: 0x00, INS: 0x20, P1: 0x00, P2: 0x00, Data: d, Le: -1})
	return err
}
