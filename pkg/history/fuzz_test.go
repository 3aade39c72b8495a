package history_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/pkg/history"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// FuzzBinaryReader checks that the binary reader never panics, fails only with its documented
// errors, and that whatever it reads from a whole file writes back to a file that reads the same.
func FuzzBinaryReader(f *testing.F) {
	f.Add(write(f, history.Binary, nil))
	f.Add(write(f, history.Binary, sampleEvents(f, 3)))
	f.Add([]byte("TWHIST\x01\x00\x80\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := history.NewBinaryReader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, history.ErrVersion) && !errors.Is(err, history.ErrTruncated) {
				t.Fatalf("header: undocumented error %v", err)
			}
			return
		}
		evs, err := readAll(r)
		if err != nil {
			if !errors.Is(err, history.ErrCorrupt) && !errors.Is(err, history.ErrTruncated) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		again := write(t, history.Binary, evs)
		r2, err := history.NewBinaryReader(bytes.NewReader(again))
		if err != nil {
			t.Fatal(err)
		}
		evs2, err := readAll(r2)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if len(evs2) != len(evs) {
			t.Fatalf("re-read %d events, want %d", len(evs2), len(evs))
		}
		for i := range evs {
			if !proto.Equal(evs[i], evs2[i]) {
				t.Fatalf("event %d differs after round trip", i)
			}
		}
	})
}

// FuzzNDJSONReader checks that the NDJSON reader never panics, reports every bad line as a
// *LineError and goes on, and that the good lines write back to NDJSON that reads the same.
func FuzzNDJSONReader(f *testing.F) {
	f.Add(write(f, history.NDJSON, sampleEvents(f, 3)))
	f.Add([]byte("{\"instrument\":\"x:A\",\"epoch\":\"1\",\"seq\":\"1\"}\r\n\n{\"bogus\":1}\nnot json"))
	f.Add([]byte("{\"instrument\":\"x:A\",\"trade\":{\"price\":\"1e3\"}}\n{\"quote\":null}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := history.NewNDJSONReader(bytes.NewReader(data))
		var evs []*pb.Event
		for i := 0; ; i++ {
			if i > len(data)+1 {
				t.Fatal("reader does not advance")
			}
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var le *history.LineError
			if errors.As(err, &le) {
				continue
			}
			if err != nil {
				t.Fatalf("undocumented error %v", err)
			}
			evs = append(evs, ev)
		}
		out := write(t, history.NDJSON, evs)
		r2, err := history.Open(bytes.NewReader(out))
		if err != nil {
			t.Fatal(err)
		}
		evs2, err := readAll(r2)
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if len(evs2) != len(evs) {
			t.Fatalf("re-read %d events, want %d", len(evs2), len(evs))
		}
		for i := range evs {
			if !proto.Equal(evs[i], evs2[i]) {
				t.Fatalf("event %d differs after round trip", i)
			}
		}
		if again := write(t, history.NDJSON, evs2); !bytes.Equal(again, out) {
			t.Fatal("NDJSON output is not stable")
		}
	})
}
