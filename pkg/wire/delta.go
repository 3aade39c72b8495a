package wire

import (
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// AppendDeltaMessage appends ServerMessage{delta: d} as one entry of ServerFrame.messages, the
// same bytes as AppendMessage produces, written directly instead of through protobuf
// reflection: a delta is encoded once per update on the feed's hot path. Unknown fields of d are
// not written (the feed never sets any).
func AppendDeltaMessage(dst []byte, d *pb.Delta) []byte {
	ds := deltaSize(d)
	ms := 1 + protowire.SizeVarint(uint64(ds)) + ds // ServerMessage.delta = 2
	dst = append(dst, 1<<3|2)                       // ServerFrame.messages = 1, bytes
	dst = protowire.AppendVarint(dst, uint64(ms))
	dst = append(dst, 2<<3|2)
	dst = protowire.AppendVarint(dst, uint64(ds))
	return appendDelta(dst, d)
}

// Sizes and appenders for each field kind; field numbers below 16 take one tag byte.

func sizeU(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

func sizeI(v int64) int { return sizeU(uint64(v)) }

func appendU(b []byte, num byte, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(append(b, num<<3), v)
}

func appendI(b []byte, num byte, v int64) []byte { return appendU(b, num, uint64(v)) }

func sizeMsg(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

func appendLen(b []byte, num byte, n int) []byte {
	return protowire.AppendVarint(append(b, num<<3|2), uint64(n))
}

func deltaSize(d *pb.Delta) int {
	n := sizeU(uint64(d.Handle)) + sizeU(d.Epoch) + sizeU(d.Seq) + sizeU(d.PrevSeq) +
		sizeU(uint64(d.Checksum)) + sizeI(d.VenueTimeNs) + sizeI(d.IngestTimeNs)
	if d.BookHash != 0 {
		n += 1 + 8 // tag 8, fixed64
	}
	switch b := d.Body.(type) {
	case *pb.Delta_Quote:
		n += sizeMsg(quoteSize(b.Quote))
	case *pb.Delta_Book:
		n += sizeMsg(bookSize(b.Book))
	case *pb.Delta_Trade:
		n += sizeMsg(tradeSize(b.Trade))
	case *pb.Delta_Candles:
		n += sizeMsg(candlesSize(b.Candles))
	case *pb.Delta_Stats:
		n += sizeMsg(statsSize(b.Stats))
	}
	return n
}

func appendDelta(b []byte, d *pb.Delta) []byte {
	b = appendU(b, 1, uint64(d.Handle))
	b = appendU(b, 2, d.Epoch)
	b = appendU(b, 3, d.Seq)
	b = appendU(b, 4, d.PrevSeq)
	b = appendU(b, 5, uint64(d.Checksum))
	b = appendI(b, 6, d.VenueTimeNs)
	b = appendI(b, 7, d.IngestTimeNs)
	if d.BookHash != 0 {
		b = protowire.AppendFixed64(append(b, 8<<3|1), d.BookHash)
	}
	switch body := d.Body.(type) {
	case *pb.Delta_Quote:
		b = appendLen(b, 10, quoteSize(body.Quote))
		b = appendQuote(b, body.Quote)
	case *pb.Delta_Book:
		b = appendLen(b, 11, bookSize(body.Book))
		b = appendBook(b, body.Book)
	case *pb.Delta_Trade:
		b = appendLen(b, 12, tradeSize(body.Trade))
		b = appendTrade(b, body.Trade)
	case *pb.Delta_Candles:
		b = appendLen(b, 13, candlesSize(body.Candles))
		b = appendCandles(b, body.Candles)
	case *pb.Delta_Stats:
		b = appendLen(b, 14, statsSize(body.Stats))
		b = appendStats(b, body.Stats)
	}
	return b
}

func quoteSize(q *pb.Quote) int {
	return sizeI(q.GetBidPrice()) + sizeI(q.GetBidSize()) + sizeI(q.GetAskPrice()) + sizeI(q.GetAskSize())
}

func appendQuote(b []byte, q *pb.Quote) []byte {
	b = appendI(b, 1, q.GetBidPrice())
	b = appendI(b, 2, q.GetBidSize())
	b = appendI(b, 3, q.GetAskPrice())
	return appendI(b, 4, q.GetAskSize())
}

func levelSize(l *pb.Level) int {
	return sizeI(l.GetPrice()) + sizeI(l.GetSize()) + sizeU(uint64(l.GetVenues()))
}

func appendLevel(b []byte, l *pb.Level) []byte {
	return appendU(appendI(appendI(b, 1, l.GetPrice()), 2, l.GetSize()), 3, uint64(l.GetVenues()))
}

func bookSize(bk *pb.BookLevels) int {
	n := sizeU(uint64(bk.GetDepth()))
	for _, l := range bk.GetBids() {
		n += sizeMsg(levelSize(l))
	}
	for _, l := range bk.GetAsks() {
		n += sizeMsg(levelSize(l))
	}
	return n
}

func appendBook(b []byte, bk *pb.BookLevels) []byte {
	b = appendU(b, 1, uint64(bk.GetDepth()))
	for _, l := range bk.GetBids() {
		b = appendLevel(appendLen(b, 2, levelSize(l)), l)
	}
	for _, l := range bk.GetAsks() {
		b = appendLevel(appendLen(b, 3, levelSize(l)), l)
	}
	return b
}

func tradeSize(t *pb.Trade) int {
	n := sizeI(t.GetPrice()) + sizeI(t.GetSize()) + sizeI(int64(t.GetSide()))
	if id := t.GetTradeId(); id != "" {
		n += sizeMsg(len(id))
	}
	if t.GetHistory() {
		n += 2 // tag 5, varint 1
	}
	return n
}

func appendTrade(b []byte, t *pb.Trade) []byte {
	b = appendI(b, 1, t.GetPrice())
	b = appendI(b, 2, t.GetSize())
	b = appendI(b, 3, int64(t.GetSide()))
	if id := t.GetTradeId(); id != "" {
		b = append(appendLen(b, 4, len(id)), id...)
	}
	if t.GetHistory() {
		b = append(b, 5<<3, 1) // field 5, varint true
	}
	return b
}

func candleSize(c *pb.Candle) int {
	return sizeU(uint64(c.GetIntervalS())) + sizeI(c.GetStartS()) + sizeI(c.GetOpen()) + sizeI(c.GetHigh()) +
		sizeI(c.GetLow()) + sizeI(c.GetClose()) + sizeI(c.GetVolume()) + sizeU(uint64(c.GetTradeCount()))
}

func candlesSize(cl *pb.CandleList) int {
	n := 0
	for _, c := range cl.GetCandles() {
		n += sizeMsg(candleSize(c))
	}
	return n
}

func appendCandles(b []byte, cl *pb.CandleList) []byte {
	for _, c := range cl.GetCandles() {
		b = appendLen(b, 1, candleSize(c))
		b = appendU(b, 1, uint64(c.GetIntervalS()))
		b = appendI(b, 2, c.GetStartS())
		b = appendI(b, 3, c.GetOpen())
		b = appendI(b, 4, c.GetHigh())
		b = appendI(b, 5, c.GetLow())
		b = appendI(b, 6, c.GetClose())
		b = appendI(b, 7, c.GetVolume())
		b = appendU(b, 8, uint64(c.GetTradeCount()))
	}
	return b
}

func statsSize(s *pb.Stats) int {
	return sizeI(s.GetSessionStartS()) + sizeI(s.GetOpen()) + sizeI(s.GetHigh()) + sizeI(s.GetLow()) +
		sizeI(s.GetLast()) + sizeI(s.GetVolume()) + sizeI(s.GetVwap()) + sizeU(s.GetTradeCount())
}

func appendStats(b []byte, s *pb.Stats) []byte {
	b = appendI(b, 1, s.GetSessionStartS())
	b = appendI(b, 2, s.GetOpen())
	b = appendI(b, 3, s.GetHigh())
	b = appendI(b, 4, s.GetLow())
	b = appendI(b, 5, s.GetLast())
	b = appendI(b, 6, s.GetVolume())
	b = appendI(b, 7, s.GetVwap())
	return appendU(b, 8, s.GetTradeCount())
}

// AppendCompactQuoteMessage appends ServerMessage{compact_quote: c} as one entry of
// ServerFrame.messages, the same bytes as AppendMessage produces, written directly (it is
// encoded once per quote update for the compact subscribers of the stream).
func AppendCompactQuoteMessage(dst []byte, c *pb.CompactQuote) []byte {
	cs := sizeU(uint64(c.Handle)) + sizeU(c.Seq) + sizeU(c.SeqStep) + sizeZ(c.IngestTimeStepUs) +
		sizeZ(c.VenueLagUs) + sizeZ(c.BidPriceChange) + sizeZ(c.BidSizeChange) +
		sizeZ(c.AskPriceChange) + sizeZ(c.AskSizeChange)
	ms := sizeMsg(cs) // ServerMessage.compact_quote = 11
	dst = appendLen(dst, 1, ms)
	dst = appendLen(dst, 11, cs)
	dst = appendU(dst, 1, uint64(c.Handle))
	dst = appendU(dst, 2, c.Seq)
	dst = appendU(dst, 3, c.SeqStep)
	dst = appendZ(dst, 4, c.IngestTimeStepUs)
	dst = appendZ(dst, 5, c.VenueLagUs)
	dst = appendZ(dst, 6, c.BidPriceChange)
	dst = appendZ(dst, 7, c.BidSizeChange)
	dst = appendZ(dst, 8, c.AskPriceChange)
	return appendZ(dst, 9, c.AskSizeChange)
}

// sizeZ and appendZ write sint64 fields (zigzag varints).
func sizeZ(v int64) int { return sizeU(protowire.EncodeZigZag(v)) }

func appendZ(b []byte, num byte, v int64) []byte { return appendU(b, num, protowire.EncodeZigZag(v)) }
