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
// price then its size, both int64 little-endian two's complement, and, only on a level whose
// Venues is not 0 (a consolidated book), Venues as a uint32 little-endian.
func (b *Book) Checksum() uint32 {
	return Checksum(b.Top(Bid, ChecksumDepth), b.Top(Ask, ChecksumDepth))
}

// Checksum computes the checksum of the given sides, best first; only the first ChecksumDepth
// levels of each count.
func Checksum(bids, asks []Level) uint32 {
	var buf [checksumInputMax]byte
	return crc32.ChecksumIEEE(AppendChecksumInput(buf[:0], bids, asks))
}

// checksumInputMax is the longest checksum input: two count bytes and up to 20 bytes per level.
const checksumInputMax = 2 + 2*ChecksumDepth*20

// AppendChecksumInput appends the bytes the checksum covers (see Checksum) to dst. Servers that
// checksum every update reuse dst to avoid an allocation per call.
func AppendChecksumInput(dst []byte, bids, asks []Level) []byte {
	if len(bids) > ChecksumDepth {
		bids = bids[:ChecksumDepth]
	}
	if len(asks) > ChecksumDepth {
		asks = asks[:ChecksumDepth]
	}
	dst = append(dst, byte(len(asks)), byte(len(bids)))
	for _, l := range asks {
		dst = appendLevel(dst, l)
	}
	for _, l := range bids {
		dst = appendLevel(dst, l)
	}
	return dst
}

func appendLevel(dst []byte, l Level) []byte {
	dst = binary.LittleEndian.AppendUint64(dst, uint64(l.Price))
	dst = binary.LittleEndian.AppendUint64(dst, uint64(l.Size))
	if l.Venues != 0 {
		dst = binary.LittleEndian.AppendUint32(dst, l.Venues)
	}
	return dst
}
