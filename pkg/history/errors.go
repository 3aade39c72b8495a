package history

import (
	"errors"
	"strconv"
)

// Sentinel errors; readers and writers wrap them with context. Test with errors.Is.
var (
	// ErrCorrupt: a binary file whose record, count or checksum is wrong, or bytes after its
	// trailer; an NDJSON line that is not an Event (inside a *LineError).
	ErrCorrupt = errors.New("history: corrupt file")
	// ErrTruncated: a binary file that ends before its trailer.
	ErrTruncated = errors.New("history: truncated file")
	// ErrVersion: a binary file of a format version or with flags this package does not know.
	ErrVersion = errors.New("history: unsupported format version")
	// ErrFormat: Open found neither a binary header nor JSON.
	ErrFormat = errors.New("history: unknown file format")
	// ErrClosed: Write after Close.
	ErrClosed = errors.New("history: writer closed")
	// ErrEvent: an event the writer cannot store (nil, or encoding to nothing or to more than
	// MaxRecordSize bytes).
	ErrEvent = errors.New("history: invalid event")
)

// LineError is a bad NDJSON line. It wraps ErrCorrupt and the decoder's error.
type LineError struct {
	Line int // 1-based
	Err  error
}

func (e *LineError) Error() string {
	return "history: line " + strconv.Itoa(e.Line) + ": " + e.Err.Error()
}

// Unwrap returns ErrCorrupt and the cause.
func (e *LineError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }
