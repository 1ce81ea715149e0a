package loads

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// fill sets every field reachable from v (pointers allocated) to a distinct non-zero value,
// so a field the codec forgets shows up as a difference after a round trip.
func fill(v reflect.Value, n *int, loc *time.Location) {
	*n++
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(1_700_000_000+int64(*n)*3601, int64(*n)*1_000_003).In(loc)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d-\x00é", *n))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n) * -37)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n) + 200)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), n, loc)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 3, 3))
		for i := range v.Len() {
			fill(v.Index(i), n, loc)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n, loc)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(v.Field(i), n, loc)
		}
	default:
		panic(fmt.Sprintf("fill: kind %s (%s) not handled: teach the codec and this test", v.Kind(), v.Type()))
	}
}

func filledRecord(loc *time.Location) Record {
	var r Record
	n := 0
	fill(reflect.ValueOf(&r).Elem(), &n, loc)
	r.V = recordVersion
	return r
}

// TestRecordCodecCoversEveryField fails when a field is added to Record, txn.State or the
// messages it carries without being added to the codec.
func TestRecordCodecCoversEveryField(t *testing.T) {
	for _, loc := range []*time.Location{time.UTC, time.Local, time.FixedZone("", 8*3600), time.FixedZone("X", -3*3600-1800)} {
		r := filledRecord(loc)
		got, err := DecodeRecord(encodeRecord(r))
		if err != nil {
			t.Fatal(err)
		}
		// Zone names are not kept (as with JSON): compare instants and offsets of times.
		if loc.String() == "X" {
			r = normZones(r)
			got = normZones(got)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip (%s) differs:\n got %+v\nwant %+v", loc, got, r)
		}
	}
	for _, r := range []Record{{V: recordVersion}, sentToBank("T1", 7, time.Now().Round(0))} {
		got, err := DecodeRecord(encodeRecord(r))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, r)
		}
		if got.State != r.State {
			t.Fatal("decoded state not == to the original")
		}
	}
}

func normZones(r Record) Record {
	z := func(t *time.Time) {
		_, off := t.Zone()
		*t = t.In(time.FixedZone("", off))
	}
	s := &r.State
	for _, t := range []*time.Time{&s.Started, &s.CheckDeadline, &s.BankDeadline, &s.KioskDeadline,
		&s.BookRetryAt, &s.ConfirmDeadline, &s.ConfirmRetryAt, &s.Finished, &r.Settled.At} {
		z(t)
	}
	return r
}

// Version 1 records (JSON) are still read; other versions are refused.
func TestDecodeRecordVersions(t *testing.T) {
	r := sentToBank("T2", 8, time.Now())
	r.V = jsonVersion
	v, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRecord(v)
	if err != nil || got.State.ID != "T2" || got.Debit == nil || got.State.STAN != r.State.STAN {
		t.Fatalf("JSON v1: %+v, %v", got, err)
	}
	r.V = 3
	v, _ = json.Marshal(r)
	if _, err := DecodeRecord(v); err == nil {
		t.Fatal("JSON v3 accepted")
	}
	b := encodeRecord(sentToBank("T3", 9, time.Now()))
	b[2] = 9
	if _, err := DecodeRecord(b); err == nil {
		t.Fatal("binary v9 accepted")
	}
	b = encodeRecord(sentToBank("T3", 9, time.Now()))
	for i := 3; i < len(b); i++ {
		if _, err := DecodeRecord(b[:i]); err == nil {
			t.Fatalf("truncated at %d of %d accepted", i, len(b))
		}
	}
	if _, err := DecodeRecord(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(sentToBank("T4", 10, time.Now())))
	f.Add(encodeRecord(filledRecord(time.FixedZone("", 3600))))
	f.Add(encodeRecord(Record{V: recordVersion}))
	f.Add([]byte(`{"v":1,"state":{"ID":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil || len(b) < 3 || b[0] != magic0 || b[1] != magic1 {
			return
		}
		// What decodes re-encodes to a record that decodes the same.
		r2, err := DecodeRecord(encodeRecord(r))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		if !reflect.DeepEqual(normZones2(r), normZones2(r2)) {
			t.Fatalf("re-encoded record differs:\n%+v\n%+v", r, r2)
		}
	})
}

func normZones2(r Record) Record {
	if r.Settled == nil {
		r.Settled = &Settled{}
	} else {
		s := *r.Settled
		r.Settled = &s
	}
	return normZones(r)
}

func BenchmarkRecordEncode(b *testing.B) {
	r := sentToBank("KIOSK001-000001-20261127", 1, time.Now())
	b.ReportAllocs()
	for b.Loop() {
		_ = encodeRecord(r)
	}
}

func BenchmarkRecordDecode(b *testing.B) {
	v := encodeRecord(sentToBank("KIOSK001-000001-20261127", 1, time.Now()))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRecord(v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecordJSONv1(b *testing.B) {
	r := sentToBank("KIOSK001-000001-20261127", 1, time.Now())
	r.V = jsonVersion
	b.ReportAllocs()
	for b.Loop() {
		v, _ := json.Marshal(r)
		if _, err := DecodeRecord(v); err != nil {
			b.Fatal(err)
		}
	}
}
