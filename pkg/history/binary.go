package history

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"

	"google.golang.org/protobuf/proto"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

const (
	headerSize  = len(Magic) + 2
	trailerSize = 1 + 8 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var marshalOpts = proto.MarshalOptions{Deterministic: true}

// BinaryWriter writes the binary format (see the package doc). Not safe for concurrent use.
type BinaryWriter struct {
	w       *bufio.Writer
	crc     hash.Hash32
	n       uint64
	buf     []byte
	started bool
	closed  bool
}

// NewBinaryWriter returns a writer of the binary format on w. The header goes out with the
// first Write or with Close.
func NewBinaryWriter(w io.Writer) *BinaryWriter {
	return &BinaryWriter{w: bufio.NewWriterSize(w, 64<<10), crc: crc32.New(castagnoli)}
}

func (w *BinaryWriter) header() error {
	if w.started {
		return nil
	}
	w.started = true
	var h [headerSize]byte
	copy(h[:], Magic)
	h[len(Magic)] = FormatVersion
	h[len(Magic)+1] = 0 // flags
	if _, err := w.w.Write(h[:]); err != nil {
		return fmt.Errorf("history: write header: %w", err)
	}
	return nil
}

// Write appends ev as one record: its deterministic protobuf encoding after a uvarint length.
func (w *BinaryWriter) Write(ev *tickwirev1.Event) error {
	if w.closed {
		return ErrClosed
	}
	if ev == nil {
		return fmt.Errorf("%w: nil event", ErrEvent)
	}
	if err := w.header(); err != nil {
		return err
	}
	size := marshalOpts.Size(ev)
	if size == 0 || size > MaxRecordSize {
		return fmt.Errorf("%w: encodes to %d bytes (want 1..%d)", ErrEvent, size, MaxRecordSize)
	}
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(size))
	var err error
	w.buf, err = marshalOpts.MarshalAppend(w.buf, ev)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEvent, err)
	}
	w.crc.Write(w.buf)
	if _, err := w.w.Write(w.buf); err != nil {
		return fmt.Errorf("history: write: %w", err)
	}
	w.n++
	return nil
}

// Count returns the number of events written.
func (w *BinaryWriter) Count() uint64 { return w.n }

// Flush writes buffered records to the underlying writer (the file is whole only after Close).
func (w *BinaryWriter) Flush() error {
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("history: flush: %w", err)
	}
	return nil
}

// Close writes the trailer (record count and CRC-32C) and flushes; later Writes fail with
// ErrClosed. It does not close the underlying writer.
func (w *BinaryWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.header(); err != nil {
		return err
	}
	var t [trailerSize]byte
	binary.LittleEndian.PutUint64(t[1:], w.n)
	binary.LittleEndian.PutUint32(t[9:], w.crc.Sum32())
	if _, err := w.w.Write(t[:]); err != nil {
		return fmt.Errorf("history: write trailer: %w", err)
	}
	return w.Flush()
}

// BinaryReader reads the binary format. Any error but io.EOF is sticky. Not safe for
// concurrent use.
type BinaryReader struct {
	r   *bufio.Reader
	crc hash.Hash32
	n   uint64
	off int64 // offset of the next byte, for error messages
	buf []byte
	err error
}

// NewBinaryReader reads and checks the header of r (ErrVersion for another magic, version or
// flags; ErrTruncated if r is shorter than a header) and returns a reader of its records.
func NewBinaryReader(r io.Reader) (*BinaryReader, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	var h [headerSize]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: %d-byte header", ErrTruncated, headerSize)
		}
		return nil, fmt.Errorf("history: read header: %w", err)
	}
	if string(h[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("%w: magic %q, want %q", ErrVersion, h[:len(Magic)], Magic)
	}
	if v := h[len(Magic)]; v != FormatVersion {
		return nil, fmt.Errorf("%w: version %d, this reader knows %d", ErrVersion, v, FormatVersion)
	}
	if f := h[len(Magic)+1]; f != 0 {
		return nil, fmt.Errorf("%w: flags %#02x, this reader knows none", ErrVersion, f)
	}
	return &BinaryReader{r: br, crc: crc32.New(castagnoli), off: int64(headerSize)}, nil
}

// Count returns the number of events read so far.
func (r *BinaryReader) Count() uint64 { return r.n }

// Next returns the next event; io.EOF after a trailer whose count and CRC match and nothing
// after it; ErrTruncated, ErrCorrupt (or an I/O error) otherwise.
func (r *BinaryReader) Next() (*tickwirev1.Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	ev, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	return ev, nil
}

func (r *BinaryReader) next() (*tickwirev1.Event, error) {
	start := r.off
	size, prefix, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, r.trailer()
	}
	if size > MaxRecordSize {
		return nil, fmt.Errorf("%w: record %d at offset %d: length %d over %d", ErrCorrupt, r.n+1, start, size, MaxRecordSize)
	}
	if cap(r.buf) < int(size) {
		r.buf = make([]byte, size)
	}
	buf := r.buf[:size]
	if _, err := io.ReadFull(r.r, buf); err != nil {
		return nil, r.readErr(err, "record")
	}
	r.off += int64(size)
	r.crc.Write(prefix)
	r.crc.Write(buf)
	ev := new(tickwirev1.Event)
	if err := proto.Unmarshal(buf, ev); err != nil {
		return nil, fmt.Errorf("%w: record %d at offset %d: %w", ErrCorrupt, r.n+1, start, err)
	}
	r.n++
	return ev, nil
}

// uvarint reads a record length in its shortest form and returns it with its bytes.
func (r *BinaryReader) uvarint() (uint64, []byte, error) {
	var b [binary.MaxVarintLen64]byte
	for i := range b {
		c, err := r.r.ReadByte()
		if err != nil {
			return 0, nil, r.readErr(err, "record length")
		}
		r.off++
		b[i] = c
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, nil, fmt.Errorf("%w: record length at offset %d not in shortest form", ErrCorrupt, r.off-int64(i)-1)
			}
			v, n := binary.Uvarint(b[:i+1])
			if n <= 0 {
				return 0, nil, fmt.Errorf("%w: record length at offset %d overflows", ErrCorrupt, r.off-int64(i)-1)
			}
			return v, b[:i+1], nil
		}
	}
	return 0, nil, fmt.Errorf("%w: record length at offset %d overflows", ErrCorrupt, r.off-binary.MaxVarintLen64)
}

func (r *BinaryReader) trailer() error {
	var t [trailerSize - 1]byte
	if _, err := io.ReadFull(r.r, t[:]); err != nil {
		return r.readErr(err, "trailer")
	}
	r.off += int64(len(t))
	if n := binary.LittleEndian.Uint64(t[:8]); n != r.n {
		return fmt.Errorf("%w: trailer counts %d records, file has %d", ErrCorrupt, n, r.n)
	}
	if c, want := binary.LittleEndian.Uint32(t[8:]), r.crc.Sum32(); c != want {
		return fmt.Errorf("%w: CRC-32C %08x in trailer, records give %08x", ErrCorrupt, c, want)
	}
	switch _, err := r.r.ReadByte(); {
	case err == nil:
		return fmt.Errorf("%w: data after the trailer at offset %d", ErrCorrupt, r.off)
	case !errors.Is(err, io.EOF):
		return fmt.Errorf("history: read: %w", err)
	}
	return io.EOF
}

func (r *BinaryReader) readErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: ends in %s at offset %d after %d records", ErrTruncated, what, r.off, r.n)
	}
	return fmt.Errorf("history: read %s: %w", what, err)
}
