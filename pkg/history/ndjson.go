package history

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// NDJSONWriter writes one protojson Event per line. Not safe for concurrent use.
type NDJSONWriter struct {
	w      *bufio.Writer
	buf    bytes.Buffer
	n      uint64
	closed bool
}

// NewNDJSONWriter returns a writer of NDJSON on w.
func NewNDJSONWriter(w io.Writer) *NDJSONWriter {
	return &NDJSONWriter{w: bufio.NewWriterSize(w, 64<<10)}
}

// Write writes ev as one line: protojson with default options, compacted (protojson may add
// spaces at random to discourage byte comparisons; compacting makes the output stable).
func (w *NDJSONWriter) Write(ev *tickwirev1.Event) error {
	if w.closed {
		return ErrClosed
	}
	if ev == nil {
		return fmt.Errorf("%w: nil event", ErrEvent)
	}
	js, err := protojson.Marshal(ev)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEvent, err)
	}
	w.buf.Reset()
	if err := json.Compact(&w.buf, js); err != nil {
		return fmt.Errorf("%w: %w", ErrEvent, err)
	}
	if w.buf.Len() > MaxRecordSize {
		return fmt.Errorf("%w: %d bytes of JSON", ErrEvent, w.buf.Len())
	}
	w.buf.WriteByte('\n')
	if _, err := w.w.Write(w.buf.Bytes()); err != nil {
		return fmt.Errorf("history: write: %w", err)
	}
	w.n++
	return nil
}

// Count returns the number of events written.
func (w *NDJSONWriter) Count() uint64 { return w.n }

// Flush writes buffered lines to the underlying writer.
func (w *NDJSONWriter) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("history: flush: %w", err)
	}
	return nil
}

// Close flushes; later Writes fail with ErrClosed. It does not close the underlying writer.
func (w *NDJSONWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.Flush()
}

// NDJSONReader reads one protojson Event per line. After a *LineError, Next goes on with the
// next line. Not safe for concurrent use.
type NDJSONReader struct {
	r    *bufio.Reader
	line int
	err  error // sticky I/O error
	opts protojson.UnmarshalOptions
}

// NewNDJSONReader returns a reader of NDJSON from r.
func NewNDJSONReader(r io.Reader) *NDJSONReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &NDJSONReader{r: br}
}

// Line returns the number of the last line read (1-based).
func (r *NDJSONReader) Line() int { return r.line }

// Next returns the event on the next non-blank line, io.EOF at the end, or a *LineError for a
// line that is not one Event (too long, not JSON, unknown fields, wrong types).
func (r *NDJSONReader) Next() (*tickwirev1.Event, error) {
	for {
		if r.err != nil {
			return nil, r.err
		}
		line, err := r.readLine()
		if err != nil {
			if errors.Is(err, io.EOF) && line == nil {
				r.err = io.EOF
				return nil, io.EOF
			}
			if le := (*LineError)(nil); errors.As(err, &le) {
				return nil, err
			}
			if !errors.Is(err, io.EOF) {
				r.err = fmt.Errorf("history: read line %d: %w", r.line, err)
				return nil, r.err
			}
			r.err = io.EOF // the last line had no "\n": use it, then stop
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev := new(tickwirev1.Event)
		if err := r.opts.Unmarshal(line, ev); err != nil {
			return nil, &LineError{Line: r.line, Err: err}
		}
		return ev, nil
	}
}

// readLine returns the next line with its "\n" (nil at the end of input). A line longer than
// MaxRecordSize is skipped and reported.
func (r *NDJSONReader) readLine() ([]byte, error) {
	var long []byte
	tooLong := false
	for {
		chunk, err := r.r.ReadSlice('\n')
		if err == nil || !errors.Is(err, bufio.ErrBufferFull) {
			if len(chunk) == 0 && long == nil && !tooLong && err != nil {
				return nil, err
			}
			r.line++
			if tooLong || len(long)+len(chunk) > MaxRecordSize+2 {
				return nil, &LineError{Line: r.line, Err: fmt.Errorf("longer than %d bytes", MaxRecordSize)}
			}
			if long != nil {
				return append(long, chunk...), err
			}
			// ReadSlice's buffer is reused by the next read: copy.
			return bytes.Clone(chunk), err
		}
		if !tooLong {
			long = append(long, chunk...)
			if len(long) > MaxRecordSize+2 {
				tooLong, long = true, nil
			}
		}
	}
}
