package shardstore

// SequenceNumber is the decoded form of a sequence number. See the package
// documentation for the format.
type SequenceNumber struct {
	Position uint64 // store-wide record position: rises with every stored record
	Shard    uint32 // index of the shard the record is in
}

const (
	seqVersion  = 1
	seqDigits   = 38 // every sequence number of format 1 has 38 digits
	seqLowZeros = 28
)

// String formats the sequence number: the decimal form of
// 2^124 + Position·2^60 + Shard·2^28, always 38 digits.
func (s SequenceNumber) String() string { return string(s.appendTo(nil)) }

func (s SequenceNumber) appendTo(b []byte) []byte {
	hi, lo := s.u128()
	return appendU128(b, hi, lo)
}

func (s SequenceNumber) u128() (hi, lo uint64) {
	// bits 127..124 version, 123..60 position, 59..28 shard, 27..0 zero.
	hi = seqVersion<<60 | s.Position>>4
	lo = s.Position<<60 | uint64(s.Shard)<<seqLowZeros
	return hi, lo
}

// ParseSequenceNumber decodes a sequence number made by this package.
func ParseSequenceNumber(str string) (SequenceNumber, error) {
	if len(str) != seqDigits {
		return SequenceNumber{}, invalidf("sequence number %q is not one issued by this store (want %d digits)", str, seqDigits)
	}
	h, ok := parseU128(str)
	if !ok || h.Hi>>60 != seqVersion || h.Lo&(1<<seqLowZeros-1) != 0 {
		return SequenceNumber{}, invalidf("sequence number %q is not one issued by this store", str)
	}
	pos := h.Hi<<4 | h.Lo>>60
	shard := uint32(h.Lo >> seqLowZeros)
	return SequenceNumber{Position: pos, Shard: shard}, nil
}

// seqString is SequenceNumber{pos, shard}.String() without the detour.
func seqString(pos uint64, shard uint32) string {
	var buf [seqDigits]byte
	return string(SequenceNumber{pos, shard}.appendTo(buf[:0]))
}
