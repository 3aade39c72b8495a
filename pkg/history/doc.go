// Package history reads and writes Tickwire history files: recorded streams of normalized
// events (tickwirev1.Event, the message ingest publishes on NATS), for backtests, exports and
// imports. Two formats carry the same events in the same order.
//
// # NDJSON (text)
//
// One event per line, in protobuf's canonical JSON mapping (protojson), compact, each line ended
// by "\n":
//
//	{"instrument":"synthetic:ACME","epoch":"1","seq":"1","venueTimeNs":"1700000000000000000","info":{...}}
//
// int64 and uint64 fields are JSON strings, as protojson writes them. The reader accepts any
// valid protojson of an Event (either field-name spelling, "\r\n" line ends, blank lines, a last
// line without "\n") but rejects unknown fields, and reports a bad line as a *LineError naming
// its 1-based line number; reading can go on with the next line. NDJSON cannot tell a file cut
// short at a line end from a whole one: use the binary format when that matters.
//
// # Binary, format version 1
//
// All integers are little-endian; "uvarint" is the protobuf/Go unsigned varint (7 bits per
// byte, least significant group first, high bit set on every byte but the last), in its
// shortest form.
//
//	header   8 bytes   "TWHIST" (ASCII, 6 bytes), version (1 byte, = 1), flags (1 byte, = 0)
//	record   repeated  uvarint n (1 <= n <= MaxRecordSize), then n bytes: the Event in protobuf's
//	                   binary encoding (this package writes Go's deterministic encoding)
//	trailer  13 bytes  0x00 (a record length of zero marks the trailer),
//	                   record count (uint64), CRC-32C (Castagnoli) (uint32) of every byte
//	                   between the header and the trailer, that is of each record's length
//	                   prefix and payload
//
// Nothing follows the trailer. A reader must reject a file with another magic, a version it
// does not know or a flag it does not know (ErrVersion), a file that ends before its trailer
// (ErrTruncated), and a record that does not decode, a length out of range, a count or CRC that
// does not match, or bytes after the trailer (ErrCorrupt). Because the CRC covers the whole file,
// corruption inside a record that still decodes is only detected at the trailer: read to io.EOF
// before trusting what was read.
//
// Open sniffs the format. Reader is what both readers implement; All turns one into an
// iterator. Writers buffer: Close (or Flush) before closing the underlying file.
package history

// FormatVersion is the version of the binary format this package writes; readers accept
// exactly this version. A change to the layout described above gets a new version.
const FormatVersion = 1

// Magic opens every binary history file.
const Magic = "TWHIST"

// MaxRecordSize bounds one encoded event in a binary file (and one NDJSON line), so a corrupt
// length cannot make a reader allocate without bound. The largest real events are full book
// snapshots: 1000 levels per side take about 12 KiB.
const MaxRecordSize = 16 << 20
