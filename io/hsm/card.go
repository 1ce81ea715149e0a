package hsm

import (
	"crypto/cipher"
	"crypto/des"
	"encoding/binary"
	"fmt"

	"github.com/quancun/quancun/io/crypt"
)

// txnTypeEPLoad is the transaction type identifier of an e-purse load (spec 0).
const txnTypeEPLoad = 0x02

// LoadRequest is what a card returned from INITIALIZE FOR LOAD plus what the kiosk sent it
// (spec 2.1): enough to rebuild the card's session key and check its MAC1.
type LoadRequest struct {
	MasterLoadKey string   // name of the MDLK (UsageCardMaster)
	Factors       [][]byte // applied in order: group factor(s) first, the card's 8-byte app serial last
	OldBalance    uint32
	Amount        uint32
	Serial        uint16 // online serial as returned by INITIALIZE FOR LOAD
	Random        [4]byte
	TermID        [6]byte
	MAC1          [4]byte
}

// TACInput is what a card's TAC covers after CREDIT FOR LOAD (spec 2.4).
type TACInput struct {
	MasterTACKey string // name of the MTK (UsageCardMaster)
	Factors      [][]byte
	NewBalance   uint32
	Amount       uint32
	Serial       uint16 // before increment
	TermID       [6]byte
	HostDateTime [7]byte // BCD YYYYMMDDhhmmss, as sent in CREDIT FOR LOAD
}

// derive diversifies the stored master e along factors (first factor first, spec 3.1). At
// least one factor is required: a card key equal to its master would be a master key in
// every card. The caller wipes the result.
func (m *Soft) derive(e *entry, factors [][]byte) ([]byte, error) {
	if len(factors) == 0 {
		return nil, fmt.Errorf("hsm: key %s: no diversification factor: %w", e.info.Name, ErrInput)
	}
	for i, f := range factors {
		if len(f) != 8 {
			return nil, fmt.Errorf("hsm: diversification factor %d must be 8 bytes, got %d: %w", i, len(f), ErrInput)
		}
	}
	// First level with the cached master schedule: E(F) || E(NOT F).
	k := make([]byte, 16)
	var nf [8]byte
	for i, b := range factors[0] {
		nf[i] = ^b
	}
	e.block.Encrypt(k[:8], factors[0])
	e.block.Encrypt(k[8:], nf[:])
	for _, f := range factors[1:] {
		next, err := crypt.Diversify(k, f)
		wipe(k)
		if err != nil {
			return nil, fmt.Errorf("hsm: diversify under %s: %w", e.info.Name, err)
		}
		k = next
	}
	return k, nil
}

// sessionMAC1 rebuilds the card's DLK, then checks MAC1; it returns the session key's DES
// schedule for MAC2.
func (m *Soft) sessionMAC1(r LoadRequest) (cipher.Block, error) {
	e, err := m.get(r.MasterLoadKey, UsageCardMaster)
	if err != nil {
		return nil, err
	}
	dlk, err := m.derive(e, r.Factors)
	if err != nil {
		return nil, err
	}
	defer wipe(dlk)
	return checkMAC1(dlk, r, txnTypeEPLoad)
}

// checkMAC1 derives SESLK from the card's DLK (spec 2.2) and checks MAC1 over
// oldBalance || amount || txnType || termID (spec 2.4).
func checkMAC1(dlk []byte, r LoadRequest, txnType byte) (cipher.Block, error) {
	var ser [2]byte
	binary.BigEndian.PutUint16(ser[:], r.Serial)
	seslk, err := crypt.LoadSessionKey(dlk, r.Random[:], ser[:])
	if err != nil {
		return nil, fmt.Errorf("hsm: session key: %w", err)
	}
	defer wipe(seslk)
	blk, err := des.NewCipher(seslk)
	if err != nil {
		return nil, fmt.Errorf("hsm: session key: %w", err)
	}
	var d [15]byte
	binary.BigEndian.PutUint32(d[0:], r.OldBalance)
	binary.BigEndian.PutUint32(d[4:], r.Amount)
	d[8] = txnType
	copy(d[9:], r.TermID[:])
	got := cbcMAC(blk, d[:], true)
	if !crypt.Equal(got[:4], r.MAC1[:]) {
		return nil, fmt.Errorf("hsm: MAC1: %w", ErrMACMismatch)
	}
	return blk, nil
}

// VerifyMAC1 checks the card's MAC1 of INITIALIZE FOR LOAD (spec 2.4); a mismatch is
// ErrMACMismatch (wrong card, wrong key, tampered amount or balance).
func (m *Soft) VerifyMAC1(r LoadRequest) error {
	_, err := m.sessionMAC1(r)
	return err
}

// IssueMAC2 checks MAC1 and only then computes MAC2 over amount, type, terminal and the host
// date/time (BCD YYYYMMDDhhmmss) the kiosk must pass to CREDIT FOR LOAD. Issuing MAC2 without
// MAC1 would let anyone mint loads for any card.
func (m *Soft) IssueMAC2(r LoadRequest, hostDateTime [7]byte) ([4]byte, error) {
	if err := checkBCD(hostDateTime[:]); err != nil {
		return [4]byte{}, err
	}
	blk, err := m.sessionMAC1(r)
	if err != nil {
		return [4]byte{}, err
	}
	var d [18]byte
	binary.BigEndian.PutUint32(d[0:], r.Amount)
	d[4] = txnTypeEPLoad
	copy(d[5:], r.TermID[:])
	copy(d[11:], hostDateTime[:])
	s := cbcMAC(blk, d[:], true)
	return [4]byte(s[:4]), nil
}

// ComputeTAC is the TAC the card must have returned from CREDIT FOR LOAD (spec 2.4), used to
// check it and to decide interrupted loads (spec 4).
func (m *Soft) ComputeTAC(in TACInput) ([4]byte, error) {
	if err := checkBCD(in.HostDateTime[:]); err != nil {
		return [4]byte{}, err
	}
	e, err := m.get(in.MasterTACKey, UsageCardMaster)
	if err != nil {
		return [4]byte{}, err
	}
	dtk, err := m.derive(e, in.Factors)
	if err != nil {
		return [4]byte{}, err
	}
	defer wipe(dtk)
	tk, err := crypt.TACKey(dtk)
	if err != nil {
		return [4]byte{}, fmt.Errorf("hsm: TAC key: %w", err)
	}
	defer wipe(tk)
	var d [24]byte
	binary.BigEndian.PutUint32(d[0:], in.NewBalance)
	binary.BigEndian.PutUint16(d[4:], in.Serial)
	binary.BigEndian.PutUint32(d[6:], in.Amount)
	d[10] = txnTypeEPLoad
	copy(d[11:], in.TermID[:])
	copy(d[17:], in.HostDateTime[:])
	mac, err := crypt.PBOCMAC(tk, d[:])
	if err != nil {
		return [4]byte{}, fmt.Errorf("hsm: TAC: %w", err)
	}
	return [4]byte(mac), nil
}

// VerifyTAC checks a card's TAC in constant time; a mismatch is ErrMACMismatch.
func (m *Soft) VerifyTAC(in TACInput, tac [4]byte) error {
	want, err := m.ComputeTAC(in)
	if err != nil {
		return err
	}
	if !crypt.Equal(want[:], tac[:]) {
		return fmt.Errorf("hsm: TAC: %w", ErrMACMismatch)
	}
	return nil
}

// PSAMMAC is the MAC a kiosk's PSAM computes with 801A (factors) and 80FA05 (zero IV): the
// PBOC 3DES MAC over Pad80(data) under DiversifyPath(master, factors...) (spec 6, vector V4).
// factors are in application order: the group factor first, the PSAM/card factor last,
// which is the reverse of how 801A lists them.
func (m *Soft) PSAMMAC(masterName string, factors [][]byte, data []byte) ([4]byte, error) {
	e, err := m.get(masterName, UsagePSAMMaster)
	if err != nil {
		return [4]byte{}, err
	}
	k, err := m.derive(e, factors)
	if err != nil {
		return [4]byte{}, err
	}
	defer wipe(k)
	mac, err := crypt.PBOC3DESMACPadded(k, nil, crypt.Pad80(data))
	if err != nil {
		return [4]byte{}, fmt.Errorf("hsm: PSAM MAC: %w", err)
	}
	return [4]byte(mac), nil
}

// VerifyPSAMMAC checks a kiosk message's PSAM MAC in constant time.
func (m *Soft) VerifyPSAMMAC(masterName string, factors [][]byte, data []byte, mac [4]byte) error {
	want, err := m.PSAMMAC(masterName, factors, data)
	if err != nil {
		return err
	}
	if !crypt.Equal(want[:], mac[:]) {
		return fmt.Errorf("hsm: PSAM MAC: %w", ErrMACMismatch)
	}
	return nil
}

// checkBCD refuses a date/time that is not BCD digits: a binary date would still MAC, but
// the card and the reconciliation file would disagree on when the load happened.
func checkBCD(b []byte) error {
	for _, c := range b {
		if c>>4 > 9 || c&0xF > 9 {
			return fmt.Errorf("hsm: host date/time %X is not BCD: %w", b, ErrInput)
		}
	}
	return nil
}
