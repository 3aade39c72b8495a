// Package capture reads and writes recorded venue frames, and replays them through a venue
// Handler exactly as they were received (same frames, same order, optionally the same pace).
//
// Formats read (see ../shared/data/README.md):
//   - NDJSON, one frame per line: {"local_ts":<Unix s>,"dir":"recv"|"send","conn":"..",
//     "url":"..","msg":<frame>} (cryptofeed-derived) or {"local_ts_ns":<Unix ns>,"msg":<frame>}
//     (hftbacktest-derived). "msg" is the frame spliced in byte for byte; a frame that is not
//     JSON is written as a string in "msg_text".
//   - the python-kraken-sdk fixture, a JSON object {"init":[frames],"updates":[frames]} with
//     no timestamps; either key may hold one frame instead of a list (ReadSDKJSON).
//
// Recorder writes the first form (with local_ts_ns), so a live run can be replayed later.
package capture

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tickwire/tickwire/internal/normalize"
)

// ErrRecord: a capture line could not be read as a record (the reader goes on with the next).
var ErrRecord = errors.New("capture: malformed record")

// MaxLine bounds one capture line (a Binance 1000x1000 REST snapshot is ~60 KB).
const MaxLine = 16 << 20

// Record is one recorded frame.
type Record struct {
	Line int64  // 1-based line (or element) number in its file
	TsNs int64  // recorder's receive clock, Unix ns; 0 if the format has none
	Conn string // connection label, if recorded
	Dir  string // "recv" (default) or "send"
	URL  string // request URL of a recorded REST response
	Msg  []byte // the frame, byte for byte
}

// Reader yields records in capture order. Next returns io.EOF at the end; an error wrapping
// ErrRecord is about one line only, and the next call goes on.
type Reader interface {
	Next() (Record, error)
}

// LineReader reads the NDJSON forms.
type LineReader struct {
	r    *bufio.Reader
	line int64
}

// NewLineReader returns a reader of NDJSON records.
func NewLineReader(r io.Reader) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, 1<<16)}
}

type wire struct {
	LocalTs   json.Number     `json:"local_ts"`
	LocalTsNs json.Number     `json:"local_ts_ns"`
	Conn      string          `json:"conn"`
	Dir       string          `json:"dir"`
	URL       string          `json:"url"`
	Msg       json.RawMessage `json:"msg"`
	MsgText   *string         `json:"msg_text"`
}

// Next implements Reader.
func (l *LineReader) Next() (Record, error) {
	for {
		b, err := l.readLine()
		if err != nil {
			return Record{}, err
		}
		l.line++
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		return ParseLine(b, l.line)
	}
}

func (l *LineReader) readLine() ([]byte, error) {
	var long []byte
	for {
		b, err := l.r.ReadSlice('\n')
		switch {
		case err == nil || (errors.Is(err, io.EOF) && len(b) > 0):
			if long == nil {
				return b, nil
			}
			return append(long, b...), nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(long)+len(b) > MaxLine {
				// Skip the rest of the line, report it.
				for errors.Is(err, bufio.ErrBufferFull) {
					_, err = l.r.ReadSlice('\n')
				}
				l.line++
				return nil, fmt.Errorf("%w: line %d longer than %d bytes", ErrRecord, l.line, MaxLine)
			}
			long = append(long, b...)
		default:
			if long != nil {
				return long, nil
			}
			return nil, err
		}
	}
}

// ParseLine parses one NDJSON record; line is its number for errors.
func ParseLine(b []byte, line int64) (Record, error) {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return Record{Line: line}, fmt.Errorf("%w: line %d: %v", ErrRecord, line, err)
	}
	rec := Record{Line: line, Conn: w.Conn, Dir: w.Dir, URL: w.URL, Msg: w.Msg}
	if w.MsgText != nil {
		rec.Msg = []byte(*w.MsgText)
	}
	if len(rec.Msg) == 0 {
		return rec, fmt.Errorf("%w: line %d: no msg", ErrRecord, line)
	}
	var err error
	switch {
	case w.LocalTsNs != "":
		rec.TsNs, err = normalize.ParseMantissa(string(w.LocalTsNs), 0)
	case w.LocalTs != "":
		rec.TsNs, err = SecondsToNs(string(w.LocalTs))
	}
	if err != nil {
		return rec, fmt.Errorf("%w: line %d: time: %v", ErrRecord, line, err)
	}
	return rec, nil
}

// SecondsToNs converts decimal Unix seconds ("1618677817.0208309") to nanoseconds exactly,
// dropping digits below a nanosecond.
func SecondsToNs(s string) (int64, error) {
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 > 9 {
		s = s[:i+10]
	}
	return normalize.ParseMantissa(s, 9)
}

// sliceReader yields records from memory.
type sliceReader struct {
	recs []Record
	i    int
}

func (s *sliceReader) Next() (Record, error) {
	if s.i >= len(s.recs) {
		return Record{}, io.EOF
	}
	s.i++
	return s.recs[s.i-1], nil
}

// NewSliceReader returns a Reader over recs.
func NewSliceReader(recs []Record) Reader { return &sliceReader{recs: recs} }

// ErrSDKShape: a python-kraken-sdk fixture's "init" or "updates" is neither a list of frames
// nor a single frame.
var ErrSDKShape = errors.New(`capture: sdk fixture: want "init"/"updates" to be a list of frames or a single frame (object or Kraken v1 array)`)

// ReadSDKJSON reads the python-kraken-sdk fixture form {"init":...,"updates":...}: the frames
// in order, numbered from 1, without timestamps. Each key holds what recorders write: a list
// of frames, or one frame on its own (the v2 fixture's "init" is a single message object; a
// Kraken v1 frame is itself an array, told from a list by its first element, a channel id
// number, where a list holds objects or arrays). null or a missing key holds no frames; any
// other value (a number, a string, true) is refused with ErrSDKShape naming the key.
func ReadSDKJSON(r io.Reader) ([]Record, error) {
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(io.LimitReader(r, 1<<30))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRecord, err)
	}
	var out []Record
	for _, key := range []string{"init", "updates"} {
		frames, err := sdkFrames(doc[key])
		if err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrRecord, key, err)
		}
		for _, m := range frames {
			out = append(out, Record{Line: int64(len(out) + 1), Conn: key, Dir: "recv", Msg: m})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no init/updates frames", ErrRecord)
	}
	return out, nil
}

// sdkFrames returns the frames of one fixture key (see ReadSDKJSON).
func sdkFrames(v json.RawMessage) ([]json.RawMessage, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || bytes.Equal(v, []byte("null")) {
		return nil, nil
	}
	switch v[0] {
	case '{':
		return []json.RawMessage{v}, nil
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(v, &list); err != nil {
			return nil, err
		}
		for _, m := range list {
			if m = bytes.TrimSpace(m); len(m) == 0 || (m[0] != '{' && m[0] != '[') {
				// Not a list of frames: one v1 array frame ([channelID, {...}, "book-10", "XBT/USD"]).
				return []json.RawMessage{v}, nil
			}
		}
		return list, nil
	}
	return nil, fmt.Errorf("%w, got %.20s", ErrSDKShape, v)
}

// merged interleaves readers by recorded time (ties: the earlier reader first).
type merged struct {
	rs    []Reader
	heads []*Record
	errs  []error
}

// Merge returns a Reader yielding the records of rs in recorded-time order (each reader must
// be in time order itself, as captures are). It joins a WebSocket capture with the REST
// snapshots recorded beside it.
func Merge(rs ...Reader) Reader {
	return &merged{rs: rs, heads: make([]*Record, len(rs)), errs: make([]error, len(rs))}
}

func (m *merged) Next() (Record, error) {
	best := -1
	for i, r := range m.rs {
		if m.heads[i] == nil && !errors.Is(m.errs[i], io.EOF) {
			rec, err := r.Next()
			if err != nil && !errors.Is(err, io.EOF) {
				return rec, err // a bad line: report it now
			}
			if err != nil {
				m.errs[i] = err
				continue
			}
			m.heads[i] = &rec
		}
		if h := m.heads[i]; h != nil && (best < 0 || h.TsNs < m.heads[best].TsNs) {
			best = i
		}
	}
	if best < 0 {
		return Record{}, io.EOF
	}
	rec := *m.heads[best]
	m.heads[best] = nil
	return rec, nil
}

// Open opens capture files and returns one Reader over all of them (merged by time), and a
// function closing the files. A file whose first non-space byte opens an object with "init"
// or "updates" is read as the python-kraken-sdk form; every other file as NDJSON.
func Open(paths ...string) (Reader, func() error, error) {
	var (
		readers []Reader
		files   []*os.File
	)
	closeAll := func() error {
		var errs []error
		for _, f := range files {
			errs = append(errs, f.Close())
		}
		return errors.Join(errs...)
	}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			_ = closeAll()
			return nil, nil, fmt.Errorf("capture: %w", err)
		}
		files = append(files, f)
		br := bufio.NewReaderSize(f, 1<<16)
		head, _ := br.Peek(4096)
		if isSDKJSON(head) {
			recs, err := ReadSDKJSON(br)
			if err != nil {
				_ = closeAll()
				return nil, nil, fmt.Errorf("capture: %s: %w", p, err)
			}
			readers = append(readers, NewSliceReader(recs))
			continue
		}
		readers = append(readers, NewLineReader(br))
	}
	if len(readers) == 1 {
		return readers[0], closeAll, nil
	}
	return Merge(readers...), closeAll, nil
}

func isSDKJSON(head []byte) bool {
	head = bytes.TrimSpace(head)
	if len(head) == 0 || head[0] != '{' {
		return false
	}
	rest := bytes.TrimSpace(head[1:])
	return bytes.HasPrefix(rest, []byte(`"init"`)) || bytes.HasPrefix(rest, []byte(`"updates"`))
}
