package book

import (
	"encoding/binary"
	"hash/crc32"
)

// ChecksumDepth is the number of levels per side that the checksum covers. Ten is enough to
// catch a client whose book drifted where traders look, and small enough to hash on every update.
const ChecksumDepth = 10

// Checksum is the CRC-32 (IEEE) of the top ChecksumDepth levels of each side, defined in
// docs/PROTOCOL.md: one byte with the number of ask levels n_a, one byte with the number of bid
// levels n_b, then the n_a ask levels best first and the n_b bid levels best first, each as its
// price then its size, both int64 little-endian two's complement.
func (b *Book) Checksum() uint32 {
	return Checksum(b.Top(Bid, ChecksumDepth), b.Top(Ask, ChecksumDepth))
}

// Checksum computes the checksum of the given sides, best first; only the first ChecksumDepth
// levels of each count.
func Checksum(bids, asks []Level) uint32 {
	if len(bids) > ChecksumDepth {
		bids = bids[:ChecksumDepth]
	}
	if len(asks) > ChecksumDepth {
		asks = asks[:ChecksumDepth]
	}
	var buf [2 + 2*ChecksumDepth*16]byte
	buf[0] = byte(len(asks))
	buf[1] = byte(len(bids))
	n := 2
	for _, l := range asks {
		binary.LittleEndian.PutUint64(buf[n:], uint64(l.Price))
		binary.LittleEndian.PutUint64(buf[n+8:], uint64(l.Size))
		n += 16
	}
	for _, l := range bids {
		binary.LittleEndian.PutUint64(buf[n:], uint64(l.Price))
		binary.LittleEndian.PutUint64(buf[n+8:], uint64(l.Size))
		n += 16
	}
	return crc32.ChecksumIEEE(buf[:n])
}
