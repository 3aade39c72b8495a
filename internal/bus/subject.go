package bus

import (
	"fmt"
	"strings"

	"github.com/tickwire/tickwire/internal/normalize"
)

// EventSubjects is the wildcard of every event subject: the stream's subject and the filter
// of a consumer of all instruments.
const EventSubjects = "tickwire.events.>"

const subjectPrefix = "tickwire.events."

const upperHex = "0123456789ABCDEF"

// EventSubject returns the NATS subject of an instrument's events:
// "tickwire.events.<venue>.<symbol>". The venue must be lowercase [a-z0-9_-]+ and the symbol
// non-empty, printable and at most 64 bytes (normalize.ParseInstrumentID). The symbol is
// escaped reversibly into one NATS token: bytes in [A-Za-z0-9_-] are kept, every other byte
// becomes %XX (uppercase hex), so "kraken:XBT/USD" -> "tickwire.events.kraken.XBT%2FUSD".
// InstrumentFromSubject is the inverse.
func EventSubject(instrument string) (string, error) {
	venue, symbol, err := normalize.ParseInstrumentID(instrument)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInstrument, err)
	}
	var b strings.Builder
	b.Grow(len(subjectPrefix) + len(venue) + 1 + 3*len(symbol))
	b.WriteString(subjectPrefix)
	b.WriteString(venue)
	b.WriteByte('.')
	for i := 0; i < len(symbol); i++ {
		c := symbol[i]
		if keepByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&0xf])
	}
	return b.String(), nil
}

func keepByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// InstrumentFromSubject returns the instrument id of an event subject made by EventSubject.
// It rejects (ErrSubject) anything EventSubject could not have produced, including
// lowercase hex or escapes of bytes that are kept verbatim, so the mapping is one-to-one.
func InstrumentFromSubject(subject string) (string, error) {
	rest, ok := strings.CutPrefix(subject, subjectPrefix)
	if !ok {
		return "", fmt.Errorf("%w: %q: prefix", ErrSubject, subject)
	}
	venue, esc, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(esc, ".") {
		return "", fmt.Errorf("%w: %q: want 4 tokens", ErrSubject, subject)
	}
	sym := make([]byte, 0, len(esc))
	for i := 0; i < len(esc); i++ {
		c := esc[i]
		switch {
		case keepByte(c):
			sym = append(sym, c)
		case c == '%' && i+2 < len(esc) && isUpperHex(esc[i+1]) && isUpperHex(esc[i+2]):
			d := unhex(esc[i+1])<<4 | unhex(esc[i+2])
			if keepByte(d) {
				return "", fmt.Errorf("%w: %q: needless escape", ErrSubject, subject)
			}
			sym = append(sym, d)
			i += 2
		default:
			return "", fmt.Errorf("%w: %q: byte %d", ErrSubject, subject, i)
		}
	}
	id := venue + ":" + string(sym)
	if _, _, err := normalize.ParseInstrumentID(id); err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrSubject, subject, err)
	}
	return id, nil
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'A' + 10
}
