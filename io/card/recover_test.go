package card

import "testing"

func TestRecoverUnknown(t *testing.T) {
	dt := [7]byte{0x20, 0x24, 0x03, 0x15, 0x14, 0x30, 0x00}
	term := [6]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	p := PendingLoad{Serial: 5, Amount: 1000, TermID: term, HostDateTime: dt, MAC2: [4]byte{0xD1, 0x4D, 0xBB, 0x02}}
	tac := [4]byte{0x27, 0x84, 0x0D, 0x33}
	ours := LogRecord{Serial: 5, Amount: 1000, Type: TxnTypeEPLoad, TermID: term, DateTime: dt}
	other := LogRecord{Serial: 5, Amount: 2000, Type: TxnTypeEPLoad, TermID: term, DateTime: dt}
	purchase := LogRecord{Serial: 5, Amount: 1000, Type: 0x06, TermID: term, DateTime: dt} // offline serial 5, not ours
	tests := []struct {
		name   string
		ev     Evidence
		want   Decision
		hasTAC bool
	}{
		{"S'==S", Evidence{Serial: 5}, NotApplied, false},
		{"S'<S", Evidence{Serial: 4}, Undecided, false},
		{"S'==S+1 matching MAC2", Evidence{Serial: 6, Prove: &TransactionProve{MAC: p.MAC2, HasMAC: true, TAC: tac}}, Applied, true},
		{"S'==S+1 other MAC2", Evidence{Serial: 6, Prove: &TransactionProve{MAC: [4]byte{1, 2, 3, 4}, HasMAC: true, TAC: tac}}, NotApplied, false},
		{"S'==S+1 TAC only, our record", Evidence{Serial: 6, Prove: &TransactionProve{TAC: tac}, Records: []LogRecord{ours}}, Applied, true},
		{"S'==S+1 no prove, other load", Evidence{Serial: 6, Records: []LogRecord{other}}, NotApplied, false},
		{"S'==S+1 no prove, no record", Evidence{Serial: 6}, Undecided, false},
		{"S'>S+1 our record", Evidence{Serial: 9, Records: []LogRecord{{Serial: 8, Type: 2}, purchase, ours}}, Applied, false},
		{"S'>S+1 other record", Evidence{Serial: 9, Records: []LogRecord{purchase, other}}, NotApplied, false},
		{"S'>S+1 rotated out", Evidence{Serial: 30, Records: []LogRecord{purchase, {Serial: 29, Type: 2}}}, Undecided, false},
	}
	for _, tt := range tests {
		got := RecoverUnknown(p, tt.ev)
		if got.Decision != tt.want || got.HasTAC != tt.hasTAC || (tt.hasTAC && got.TAC != tac) || got.Reason == "" {
			t.Errorf("%s: %+v, want %v hasTAC %v", tt.name, got, tt.want, tt.hasTAC)
		}
	}
}
