package history

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Reader reads events from a history file in order. Next returns io.EOF after the last event of
// a whole file, and another error (wrapping ErrCorrupt, ErrTruncated or ErrVersion, or an I/O
// error) otherwise.
type Reader interface {
	Next() (*tickwirev1.Event, error)
}

// Writer writes events to a history file. Close writes what the format needs at the end and
// flushes; it does not close the underlying io.Writer.
type Writer interface {
	Write(ev *tickwirev1.Event) error
	Close() error
}

// Format is a history file format.
type Format int

const (
	// NDJSON: one protojson Event per line.
	NDJSON Format = iota + 1
	// Binary: the length-prefixed protobuf format with a checksummed trailer.
	Binary
)

// String returns "ndjson" or "binary".
func (f Format) String() string {
	switch f {
	case NDJSON:
		return "ndjson"
	case Binary:
		return "binary"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// ParseFormat parses "ndjson" or "binary".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "ndjson":
		return NDJSON, nil
	case "binary":
		return Binary, nil
	}
	return 0, fmt.Errorf("%w: %q (want ndjson or binary)", ErrFormat, s)
}

// NewWriter returns a Writer of format f on w. For Binary the header is written by the first
// Write or by Close, so an empty file is still a valid one.
func NewWriter(w io.Writer, f Format) (Writer, error) {
	switch f {
	case NDJSON:
		return NewNDJSONWriter(w), nil
	case Binary:
		return NewBinaryWriter(w), nil
	}
	return nil, fmt.Errorf("%w: %v", ErrFormat, f)
}

// Open returns a Reader for r, choosing the format from its first bytes: the binary magic, or
// JSON (an object, possibly after blank space). An empty r is an empty NDJSON file. The
// returned reader buffers r.
func Open(r io.Reader) (Reader, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(Magic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("history: open: %w", err)
	}
	if bytes.Equal(head, []byte(Magic)) {
		return NewBinaryReader(br)
	}
	// Skip leading blank space to find the first JSON byte, without consuming it.
	for n := 1; ; n++ {
		b, err := br.Peek(n)
		if len(b) < n {
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("history: open: %w", err)
			}
			return NewNDJSONReader(br), nil // empty or blank: no events
		}
		switch c := b[n-1]; c {
		case ' ', '\t', '\r', '\n':
			if n >= 4096 {
				return nil, fmt.Errorf("%w: only blank space in the first %d bytes", ErrFormat, n)
			}
			continue
		case '{':
			return NewNDJSONReader(br), nil
		default:
			return nil, fmt.Errorf("%w: starts with %q", ErrFormat, head)
		}
	}
}

// All returns the events of r as an iterator. It stops after the last event (io.EOF is not
// yielded) or after yielding the first error, with a nil event.
func All(r Reader) iter.Seq2[*tickwirev1.Event, error] {
	return func(yield func(*tickwirev1.Event, error) bool) {
		for {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}
