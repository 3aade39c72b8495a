package history_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/pkg/history"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// sampleEvents returns n events of a synthetic market with positions and times, as ingest
// would store them.
func sampleEvents(t testing.TB, n int) []*pb.Event {
	t.Helper()
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: 5, Seed: 7, Depth: 20})
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[string]uint64{}
	out := make([]*pb.Event, n)
	for i := range out {
		now := int64(1_700_000_000_000_000_000) + int64(i)*1_000_000
		ev := m.Next(now)
		seqs[ev.Instrument]++
		ev.Epoch, ev.Seq, ev.IngestTimeNs = 1_700_000_000_000, seqs[ev.Instrument], now+5000
		out[i] = ev
	}
	return out
}

func write(t testing.TB, f history.Format, evs []*pb.Event) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := history.NewWriter(&buf, f)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(r history.Reader) ([]*pb.Event, error) {
	var out []*pb.Event
	for ev, err := range history.All(r) {
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func equalEvents(t *testing.T, got, want []*pb.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d events, want %d", len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("event %d:\n got %v\nwant %v", i, got[i], want[i])
		}
	}
}

func TestRoundTrip(t *testing.T) {
	evs := sampleEvents(t, 500)
	for _, f := range []history.Format{history.NDJSON, history.Binary} {
		t.Run(f.String(), func(t *testing.T) {
			data := write(t, f, evs)
			r, err := history.Open(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(r)
			if err != nil {
				t.Fatal(err)
			}
			equalEvents(t, got, evs)
			// Writing what was read gives the same bytes.
			if again := write(t, f, got); !bytes.Equal(again, data) {
				t.Fatal("re-encoding differs")
			}
			// After the end, Next keeps returning io.EOF.
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("after end: %v", err)
			}
		})
	}
}

func TestEmpty(t *testing.T) {
	for _, f := range []history.Format{history.NDJSON, history.Binary} {
		data := write(t, f, nil)
		r, err := history.Open(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%v: %v", f, err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("%v: %v", f, err)
		}
	}
	if got := len(write(t, history.Binary, nil)); got != 8+13 {
		t.Fatalf("empty binary file is %d bytes", got)
	}
}

func TestBinaryLayout(t *testing.T) {
	ev := &pb.Event{Instrument: "x:A", Epoch: 1, Seq: 2}
	data := write(t, history.Binary, []*pb.Event{ev})
	enc, _ := proto.MarshalOptions{Deterministic: true}.Marshal(ev)
	want := append([]byte("TWHIST\x01\x00"), byte(len(enc)))
	want = append(want, enc...)
	want = append(want, 0, 1, 0, 0, 0, 0, 0, 0, 0)
	// CRC-32C of the record bytes (length prefix + payload), little-endian.
	crc := crc32c(append([]byte{byte(len(enc))}, enc...))
	want = append(want, byte(crc), byte(crc>>8), byte(crc>>16), byte(crc>>24))
	if !bytes.Equal(data, want) {
		t.Fatalf("layout\n got %x\nwant %x", data, want)
	}
}

// crc32c is a bitwise CRC-32C, independent of hash/crc32, to pin the checksum definition.
func crc32c(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestBinaryTruncatedEverywhere(t *testing.T) {
	data := write(t, history.Binary, sampleEvents(t, 20))
	for n := 0; n < len(data); n++ {
		r, err := history.NewBinaryReader(bytes.NewReader(data[:n]))
		if err == nil {
			_, err = readAll(r)
		}
		if !errors.Is(err, history.ErrTruncated) {
			t.Fatalf("cut at %d of %d: %v, want ErrTruncated", n, len(data), err)
		}
	}
}

func TestBinaryCorruptEverywhere(t *testing.T) {
	data := write(t, history.Binary, sampleEvents(t, 10))
	for i := 8; i < len(data); i++ {
		bad := bytes.Clone(data)
		bad[i] ^= 0x10
		r, err := history.NewBinaryReader(bytes.NewReader(bad))
		if err != nil {
			t.Fatal(err)
		}
		_, err = readAll(r)
		if err == nil {
			t.Fatalf("flip at %d not detected", i)
		}
		if !errors.Is(err, history.ErrCorrupt) && !errors.Is(err, history.ErrTruncated) {
			t.Fatalf("flip at %d: %v", i, err)
		}
	}
}

func TestBinaryErrors(t *testing.T) {
	good := write(t, history.Binary, sampleEvents(t, 3))
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"version", append([]byte("TWHIST\x02\x00"), good[8:]...), history.ErrVersion},
		{"flags", append([]byte("TWHIST\x01\x01"), good[8:]...), history.ErrVersion},
		{"magic", append([]byte("TWHISX\x01\x00"), good[8:]...), history.ErrVersion},
		{"short header", []byte("TWHI"), history.ErrTruncated},
		{"after trailer", append(bytes.Clone(good), 0), history.ErrCorrupt},
		{"no trailer", good[:len(good)-13], history.ErrTruncated},
		{"huge length", []byte("TWHIST\x01\x00\xff\xff\xff\xff\x0f"), history.ErrCorrupt},
		{"overlong varint", []byte("TWHIST\x01\x00\x80\x00"), history.ErrCorrupt},
		{"bad protobuf", []byte("TWHIST\x01\x00\x02\xff\xff"), history.ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := history.NewBinaryReader(bytes.NewReader(tc.data))
			if err == nil {
				_, err = readAll(r)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNDJSONBadLines(t *testing.T) {
	in := strings.Join([]string{
		`{"instrument":"x:A","epoch":"1","seq":"1","info":{"id":"x:A"}}`,
		``,
		`{"instrument":"x:A","epoch":"1","seq":"2","bogus":1}`,
		`not json`,
		`{"instrument":"x:A","epoch":"1","seq":"3","quote":{"bidPrice":"5"}}` + "\r",
		`{"instrument":"x:A","seq":"x"}`,
		`{"instrument":"x:A","epoch":"1","seq":"4","trade":{"price":"5","size":"1"}}`, // no final newline
	}, "\n")
	r := history.NewNDJSONReader(strings.NewReader(in))
	var seqs []uint64
	var badLines []int
	for {
		ev, err := r.Next()
		if err == io.EOF {
			break
		}
		var le *history.LineError
		if errors.As(err, &le) {
			if !errors.Is(err, history.ErrCorrupt) {
				t.Fatalf("%v does not wrap ErrCorrupt", err)
			}
			badLines = append(badLines, le.Line)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ev.Seq)
	}
	if want := []uint64{1, 3, 4}; !slicesEqual(seqs, want) {
		t.Fatalf("seqs %v, want %v", seqs, want)
	}
	if want := []int{3, 4, 6}; !slicesEqual(badLines, want) {
		t.Fatalf("bad lines %v, want %v", badLines, want)
	}
}

func TestNDJSONLongLine(t *testing.T) {
	long := `{"instrument":"` + strings.Repeat("a", history.MaxRecordSize+10) + `"}`
	in := long + "\n" + `{"instrument":"x:A","epoch":"1","seq":"9"}` + "\n"
	r := history.NewNDJSONReader(strings.NewReader(in))
	_, err := r.Next()
	var le *history.LineError
	if !errors.As(err, &le) || le.Line != 1 {
		t.Fatalf("long line: %v", err)
	}
	ev, err := r.Next()
	if err != nil || ev.Seq != 9 {
		t.Fatalf("after long line: %v %v", ev, err)
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOpenSniffs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", nil},
		{"\n\n  ", nil},
		{"  \n{\"instrument\":\"x:A\"}\n", nil},
		{"TWHIST\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", nil},
		{"PK\x03\x04", history.ErrFormat},
		{"[1,2]", history.ErrFormat},
	} {
		_, err := history.Open(strings.NewReader(tc.in))
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("Open(%q): %v, want %v", tc.in, err, tc.want)
		}
	}
}

func TestWriterRejects(t *testing.T) {
	for _, f := range []history.Format{history.NDJSON, history.Binary} {
		w, _ := history.NewWriter(io.Discard, f)
		if err := w.Write(nil); !errors.Is(err, history.ErrEvent) {
			t.Errorf("%v nil: %v", f, err)
		}
		_ = w.Close()
		if err := w.Write(&pb.Event{Instrument: "x:A"}); !errors.Is(err, history.ErrClosed) {
			t.Errorf("%v after close: %v", f, err)
		}
	}
	w := history.NewBinaryWriter(io.Discard)
	if err := w.Write(&pb.Event{}); !errors.Is(err, history.ErrEvent) {
		t.Errorf("empty event: %v", err)
	}
}

func TestParseFormat(t *testing.T) {
	for _, f := range []history.Format{history.NDJSON, history.Binary} {
		if g, err := history.ParseFormat(f.String()); err != nil || g != f {
			t.Fatalf("%v: %v %v", f, g, err)
		}
	}
	if _, err := history.ParseFormat("csv"); !errors.Is(err, history.ErrFormat) {
		t.Fatal(err)
	}
}

func BenchmarkBinaryWrite(b *testing.B) {
	evs := sampleEvents(b, 1000)
	b.ReportAllocs()
	for b.Loop() {
		w := history.NewBinaryWriter(io.Discard)
		for _, ev := range evs {
			_ = w.Write(ev)
		}
		_ = w.Close()
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkBinaryRead(b *testing.B) {
	data := write(b, history.Binary, sampleEvents(b, 1000))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := history.NewBinaryReader(bytes.NewReader(data))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkNDJSONRead(b *testing.B) {
	data := write(b, history.NDJSON, sampleEvents(b, 1000))
	b.ReportAllocs()
	for b.Loop() {
		r := history.NewNDJSONReader(bytes.NewReader(data))
		for {
			if _, err := r.Next(); err != nil {
				break
			}
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
