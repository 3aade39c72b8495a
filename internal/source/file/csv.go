package file

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
)

// csvFile reads a CSV file with a header row.
type csvFile struct {
	f      *os.File
	r      *csv.Reader
	header map[string]int
	line   int64
}

func openCSV(path string) (*csvFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("file: %w", err)
	}
	c := &csvFile{f: f}
	if err := c.reset(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return c, nil
}

// reset reads the file again from the header.
func (c *csvFile) reset() error {
	if _, err := c.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	c.r = csv.NewReader(c.f)
	c.r.FieldsPerRecord = -1
	c.r.ReuseRecord = true
	c.line = 1
	head, err := c.r.Read()
	if err != nil {
		return fmt.Errorf("file: %s: header: %w", c.f.Name(), err)
	}
	c.header = map[string]int{}
	for i, h := range head {
		c.header[strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))] = i
	}
	return nil
}

// resetNoHeader reads the file from its first line, with cols as the column names.
func (c *csvFile) resetNoHeader(cols []string) error {
	if _, err := c.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("file: %w", err)
	}
	c.r = csv.NewReader(c.f)
	c.r.FieldsPerRecord = -1
	c.r.ReuseRecord = true
	c.line = 0
	c.header = map[string]int{}
	for i, col := range cols {
		c.header[col] = i
	}
	return nil
}

// require checks that the header has every column.
func (c *csvFile) require(cols ...string) error {
	for _, col := range cols {
		if _, ok := c.header[col]; !ok {
			return fmt.Errorf("file: %s: no column %q (have %v)", c.f.Name(), col, c.header)
		}
	}
	return nil
}

// next returns the next record (reused by the next call); a malformed row is an ErrRecord.
func (c *csvFile) next() ([]string, error) {
	rec, err := c.r.Read()
	c.line++
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: line %d: %v", ErrRecord, c.line, err)
		}
		return nil, err
	}
	return rec, nil
}

// get returns column col of rec, "" if the row is short.
func (c *csvFile) get(rec []string, col string) string {
	i, ok := c.header[col]
	if !ok || i >= len(rec) {
		return ""
	}
	return strings.TrimSpace(rec[i])
}

// prescan returns the largest decimals in the price and size columns over the first
// PrescanRows rows, then rewinds.
func (c *csvFile) prescan(priceCols, sizeCols []string) (pd, sd int32, err error) {
	for i := 0; i < PrescanRows; i++ {
		rec, err := c.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			continue
		}
		for _, col := range priceCols {
			pd = max(pd, source.MaxDecimals(c.get(rec, col)))
		}
		for _, col := range sizeCols {
			sd = max(sd, source.MaxDecimals(c.get(rec, col)))
		}
	}
	return pd, sd, c.reset()
}

// micros parses tardis microsecond timestamps into nanoseconds (0 if empty or invalid).
func micros(s string) int64 {
	us, err := normalize.ParseMantissa(s, 0)
	if err != nil || us > (1<<63-1)/1000 {
		return 0
	}
	return us * 1000
}
