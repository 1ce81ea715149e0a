package hsm

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/quancun/quancun/io/crypt"
)

// v2 is the V2 load: card 0000000012345678, balance 5000, load 1000, serial 5.
func v2(t testing.TB) (*Soft, LoadRequest, [7]byte) {
	m := newSoft(t, nil)
	mustClear(t, m, "mdlk", UsageCardMaster, hexMDLK)
	mustClear(t, m, "mtk", UsageCardMaster, hexMTK)
	r := LoadRequest{
		MasterLoadKey: "mdlk",
		Factors:       [][]byte{unhex(t, "0000000012345678")},
		OldBalance:    5000,
		Amount:        1000,
		Serial:        5,
		Random:        [4]byte(unhex(t, "1A2B3C4D")),
		TermID:        [6]byte(unhex(t, "112233445566")),
		MAC1:          [4]byte(unhex(t, "57853F0D")),
	}
	return m, r, [7]byte(unhex(t, "20240315143000"))
}

func tacInput(r LoadRequest, dt [7]byte) TACInput {
	return TACInput{MasterTACKey: "mtk", Factors: r.Factors, NewBalance: r.OldBalance + r.Amount,
		Amount: r.Amount, Serial: r.Serial, TermID: r.TermID, HostDateTime: dt}
}

func TestV2Load(t *testing.T) {
	m, r, dt := v2(t)
	if err := m.VerifyMAC1(r); err != nil {
		t.Fatalf("VerifyMAC1: %v", err)
	}
	mac2, err := m.IssueMAC2(r, dt)
	if err != nil || upper(mac2[:]) != "D14DBB02" {
		t.Fatalf("IssueMAC2 = %X, %v; want D14DBB02", mac2, err)
	}
	in := tacInput(r, dt)
	tac, err := m.ComputeTAC(in)
	if err != nil || upper(tac[:]) != "27840D33" {
		t.Fatalf("ComputeTAC = %X, %v; want 27840D33", tac, err)
	}
	if err := m.VerifyTAC(in, [4]byte(unhex(t, "27840D33"))); err != nil {
		t.Errorf("VerifyTAC: %v", err)
	}
	for _, bad := range []TACInput{
		func() TACInput { x := in; x.NewBalance = 5000; return x }(), // balance not credited
		func() TACInput { x := in; x.Serial = 6; return x }(),        // serial after increment
		func() TACInput { x := in; x.HostDateTime[6] = 0x01; return x }(),
	} {
		if err := m.VerifyTAC(bad, tac); !errors.Is(err, ErrMACMismatch) {
			t.Errorf("VerifyTAC(%+v) err = %v, want ErrMACMismatch", bad, err)
		}
	}
	if err := m.VerifyTAC(in, [4]byte(unhex(t, "27840D32"))); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("VerifyTAC(wrong TAC) err = %v, want ErrMACMismatch", err)
	}
}

// TestP3P4 runs the published example (biecuoliao, an ED load, type 01) through the MAC1
// check below the key derivation: SESLK from DLK 1122..2211 (P3) and MAC1 2988AE5A (P4).
func TestP3P4(t *testing.T) {
	r := LoadRequest{Amount: 0x1000, Serial: 0, Random: [4]byte(unhex(t, "11223344")),
		TermID: [6]byte(unhex(t, "001122334455")), MAC1: [4]byte(unhex(t, "2988AE5A"))}
	dlk := unhex(t, "11223344556677888877665544332211")
	if _, err := checkMAC1(dlk, r, 0x01); err != nil {
		t.Errorf("P4 MAC1 2988AE5A refused: %v", err)
	}
	if _, err := checkMAC1(dlk, r, txnTypeEPLoad); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("P4 MAC1 as an EP load err = %v, want ErrMACMismatch", err)
	}
	// P3 itself: SESLK = 9B1D924E05595603, seen through the schedule checkMAC1 returns.
	blk, _ := checkMAC1(dlk, r, 0x01)
	want, _ := crypt.EncryptECB(unhex(t, "9B1D924E05595603"), make([]byte, 8))
	var got [8]byte
	blk.Encrypt(got[:], got[:])
	if upper(got[:]) != upper(want) {
		t.Errorf("P3 SESLK schedule differs from 9B1D924E05595603")
	}
}

// cardMACs computes MAC1 and MAC2 as the card would, with io/crypt only.
func cardMACs(t *testing.T, dlk []byte, r LoadRequest, dt [7]byte) (mac1, mac2 [4]byte) {
	t.Helper()
	seslk, err := crypt.LoadSessionKey(dlk, r.Random[:], []byte{byte(r.Serial >> 8), byte(r.Serial)})
	if err != nil {
		t.Fatal(err)
	}
	d1 := binary.BigEndian.AppendUint32(nil, r.OldBalance)
	d1 = binary.BigEndian.AppendUint32(d1, r.Amount)
	d1 = append(append(d1, 0x02), r.TermID[:]...)
	m1, _ := crypt.PBOCMAC(seslk, d1)
	d2 := binary.BigEndian.AppendUint32(nil, r.Amount)
	d2 = append(append(append(d2, 0x02), r.TermID[:]...), dt[:]...)
	m2, _ := crypt.PBOCMAC(seslk, d2)
	return [4]byte(m1), [4]byte(m2)
}

func TestWrongMAC1IssuesNoMAC2(t *testing.T) {
	m, r, dt := v2(t)
	for _, mutate := range []func(*LoadRequest){
		func(r *LoadRequest) { r.MAC1[0] ^= 0x80 },
		func(r *LoadRequest) { r.Amount = 100000 },                                  // tampered amount
		func(r *LoadRequest) { r.OldBalance = 0 },                                   // tampered balance
		func(r *LoadRequest) { r.Serial = 6 },                                       // replayed serial
		func(r *LoadRequest) { r.Factors = [][]byte{unhex(t, "0000000012345679")} }, // another card
	} {
		bad := r
		mutate(&bad)
		if err := m.VerifyMAC1(bad); !errors.Is(err, ErrMACMismatch) {
			t.Errorf("VerifyMAC1(%+v) err = %v, want ErrMACMismatch", bad, err)
		}
		mac2, err := m.IssueMAC2(bad, dt)
		if !errors.Is(err, ErrMACMismatch) || mac2 != [4]byte{} {
			t.Errorf("IssueMAC2(%+v) = %X, %v; want no MAC2 and ErrMACMismatch", bad, mac2, err)
		}
	}
}

func TestCardKeyUsage(t *testing.T) {
	m, r, dt := v2(t)
	signOn(t, m)
	r.MasterLoadKey = "pik"
	if err := m.VerifyMAC1(r); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("MAC1 under a PIN key err = %v, want ErrWrongUsage", err)
	}
	r.MasterLoadKey = "nope"
	if _, err := m.IssueMAC2(r, dt); !errors.Is(err, ErrNoKey) {
		t.Errorf("unknown master err = %v, want ErrNoKey", err)
	}
	_, r, _ = v2(t)
	r.Factors = nil
	if err := m.VerifyMAC1(r); !errors.Is(err, ErrInput) {
		t.Errorf("no factors err = %v, want ErrInput", err)
	}
	r.Factors = [][]byte{unhex(t, "12345678")}
	if err := m.VerifyMAC1(r); !errors.Is(err, ErrInput) {
		t.Errorf("4-byte factor err = %v, want ErrInput", err)
	}
	_, r, _ = v2(t)
	if _, err := m.IssueMAC2(r, [7]byte(unhex(t, "2024031514300A"))); !errors.Is(err, ErrInput) {
		t.Errorf("non-BCD date err = %v, want ErrInput", err)
	}
	if _, err := m.PSAMMAC("mdlk", r.Factors, nil); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("PSAM MAC under a card master err = %v, want ErrWrongUsage", err)
	}
	if _, err := m.MAC("mdlk", MACX919, nil); !errors.Is(err, ErrWrongUsage) {
		t.Errorf("host MAC under a card master err = %v, want ErrWrongUsage", err)
	}
}

// TestV3TwoLevel checks the two-level path (city factor first, V3) end to end: MAC1 and MAC2
// computed by hand from the V3 DLK must be what the module accepts and issues.
func TestV3TwoLevel(t *testing.T) {
	m, r, dt := v2(t)
	r.Factors = [][]byte{unhex(t, "2000FF0000000000"), unhex(t, "0000000012345678")}
	dlk := unhex(t, "56ABA73A20BCBD24186CD693B44CFD63") // V3
	mac1, mac2 := cardMACs(t, dlk, r, dt)
	r.MAC1 = mac1
	got, err := m.IssueMAC2(r, dt)
	if err != nil || got != mac2 {
		t.Fatalf("two-level IssueMAC2 = %X, %v; want %X", got, err, mac2)
	}
	k, _ := m.derive(m.keys["mdlk"], r.Factors[:1])
	if upper(k) != "9ECF89A2C1C2EB55AF64921197C81A3E" {
		t.Errorf("K1 = %X, want V3 9ECF89A2C1C2EB55AF64921197C81A3E", k)
	}
	// The one-level MAC1 of V2 must not pass on the two-level path.
	r.MAC1 = [4]byte(unhex(t, "57853F0D"))
	if err := m.VerifyMAC1(r); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("one-level MAC1 on two-level path err = %v", err)
	}
}

func TestV4PSAMMAC(t *testing.T) {
	m := newSoft(t, nil)
	mustClear(t, m, "psam", UsagePSAMMaster, hexPSAMMK)
	// 801A lists F1 (PSAM) then F2 (group); the group factor is applied first.
	factors := [][]byte{unhex(t, "2000FF0000000000"), unhex(t, "0000000000000001")}
	data := []byte("LOADREQ|0000000012345678|000003E8")
	mac, err := m.PSAMMAC("psam", factors, data)
	if err != nil || upper(mac[:]) != "A5B5275E" {
		t.Fatalf("PSAMMAC = %X, %v; want A5B5275E", mac, err)
	}
	if err := m.VerifyPSAMMAC("psam", factors, data, mac); err != nil {
		t.Errorf("VerifyPSAMMAC: %v", err)
	}
	reversed := [][]byte{factors[1], factors[0]}
	if err := m.VerifyPSAMMAC("psam", reversed, data, mac); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("factors in 801A order err = %v, want ErrMACMismatch", err)
	}
	data[len(data)-1] = '9'
	if err := m.VerifyPSAMMAC("psam", factors, data, mac); !errors.Is(err, ErrMACMismatch) {
		t.Errorf("tampered data err = %v, want ErrMACMismatch", err)
	}
}
