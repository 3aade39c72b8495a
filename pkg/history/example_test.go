package history_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tickwire/tickwire/pkg/history"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Write a few events in the binary format, then read them back.
func Example() {
	events := []*pb.Event{
		{Instrument: "synthetic:ACME", Epoch: 1, Seq: 1, Body: &pb.Event_Info{Info: &pb.InstrumentInfo{
			Id: "synthetic:ACME", PriceScale: 2, SizeScale: 4}}},
		{Instrument: "synthetic:ACME", Epoch: 1, Seq: 2, Body: &pb.Event_Book{Book: &pb.BookUpdate{Snapshot: true,
			Bids: []*pb.Level{{Price: 10050, Size: 20000}}, Asks: []*pb.Level{{Price: 10055, Size: 15000}}}}},
		{Instrument: "synthetic:ACME", Epoch: 1, Seq: 3, Body: &pb.Event_Trade{Trade: &pb.Trade{
			Price: 10055, Size: 5000, Side: pb.Side_SIDE_BUY}}},
	}
	var file bytes.Buffer
	w := history.NewBinaryWriter(&file)
	for _, ev := range events {
		if err := w.Write(ev); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil { // writes the trailer
		panic(err)
	}

	r, err := history.Open(&file) // sniffs binary or NDJSON
	if err != nil {
		panic(err)
	}
	for ev, err := range history.All(r) {
		if err != nil {
			panic(err) // ErrCorrupt, ErrTruncated, ...
		}
		fmt.Println(ev.GetInstrument(), ev.GetSeq(), kind(ev))
	}
	// Output:
	// synthetic:ACME 1 info
	// synthetic:ACME 2 book
	// synthetic:ACME 3 trade
}

func kind(ev *pb.Event) string {
	switch ev.Body.(type) {
	case *pb.Event_Info:
		return "info"
	case *pb.Event_Book:
		return "book"
	case *pb.Event_Trade:
		return "trade"
	case *pb.Event_Quote:
		return "quote"
	}
	return "?"
}

// Iterate over a file exported by "tickctl export", counting trades per instrument.
func ExampleAll() {
	path := filepath.Join(os.TempDir(), "history-example.ndjson")
	defer os.Remove(path)
	if err := os.WriteFile(path, []byte(
		`{"instrument":"synthetic:ACME","epoch":"1","seq":"7","trade":{"price":"10055","size":"5000","side":"SIDE_BUY"}}`+"\n"+
			`{"instrument":"synthetic:BOLT","epoch":"1","seq":"3","quote":{"bidPrice":"990","bidSize":"1","askPrice":"995","askSize":"2"}}`+"\n"+
			`{"instrument":"synthetic:ACME","epoch":"1","seq":"8","trade":{"price":"10050","size":"100","side":"SIDE_SELL"}}`+"\n"), 0o644); err != nil {
		panic(err)
	}

	f, err := os.Open(path)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	r, err := history.Open(f)
	if err != nil {
		panic(err)
	}
	trades := map[string]int{}
	for ev, err := range history.All(r) {
		if err != nil {
			fmt.Println("error:", err) // e.g. "history: line 2: ..."
			return
		}
		if ev.GetTrade() != nil {
			trades[ev.GetInstrument()]++
		}
	}
	fmt.Println(trades)
	// Output: map[synthetic:ACME:2]
}

// The NDJSON format: one protojson event per line.
func ExampleNewNDJSONWriter() {
	w := history.NewNDJSONWriter(os.Stdout)
	_ = w.Write(&pb.Event{Instrument: "synthetic:ACME", Epoch: 1, Seq: 9, VenueTimeNs: 1700000000000000000,
		Body: &pb.Event_Quote{Quote: &pb.Quote{BidPrice: 10050, BidSize: 20000, AskPrice: 10055, AskSize: 15000}}})
	_ = w.Close()
	// Output:
	// {"instrument":"synthetic:ACME","epoch":"1","seq":"9","venueTimeNs":"1700000000000000000","quote":{"bidPrice":"10050","bidSize":"20000","askPrice":"10055","askSize":"15000"}}
}
