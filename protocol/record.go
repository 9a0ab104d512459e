package protocol

import (
	"strings"
)

// DefaultStream is the stream the cloud writes telemetry to.
const DefaultStream = "telemetry"

// Record is a decoded stream record: one device's readings from one batch.
//
// On the stream a record is a SenML-CBOR pack (RFC 8428, integer labels)
// that any SenML library can read: the first record carries bn
// "{device}:" so a resolved name is "{device}:{metric}", every resolved time
// is absolute, and the extension labels gw (gateway id, first record) and rt
// (gateway receive time in seconds, every record) travel along; fl carries
// Flags when they are set. The partition key is the device id.
type Record struct {
	Gateway  string
	Device   string
	Readings []Reading // Device set; Name is the metric (without the device prefix)
}

// PartitionKey returns the Kinesis partition key for a device's records.
func PartitionKey(device string) string { return device }

// AppendRecord encodes readings of one device as a stream record. Every
// reading must belong to the same device, carry a time, and be valid; the
// result must fit MaxRecordBytes (use EncodeRecords to split at
// TargetRecordBytes).
func AppendRecord(dst []byte, gateway string, rs []Reading) ([]byte, error) {
	if err := checkRecordReadings(gateway, rs); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = AppendSenMLCBOR(dst, rs, &EncodeOptions{BaseName: rs[0].Device + ":", stream: true, gateway: gateway})
	if len(dst)-start > MaxRecordBytes {
		return dst[:start], batchErr(-1, "", ErrBadRecord, "record is %d bytes, limit %d: split it (EncodeRecords)", len(dst)-start, MaxRecordBytes)
	}
	return dst, nil
}

func checkRecordReadings(gateway string, rs []Reading) error {
	if len(rs) == 0 {
		return batchErr(-1, "", ErrBadRecord, "no readings")
	}
	if err := CheckDeviceID(gateway); err != nil {
		return batchErr(-1, "gateway", ErrBadRecord, "%w", err)
	}
	dev := rs[0].Device
	for i := range rs {
		if err := rs[i].validate(i); err != nil {
			return err
		}
		if rs[i].Device != dev {
			return batchErr(i, "device", ErrBadRecord, "device %q in a record of device %q", rs[i].Device, dev)
		}
		if rs[i].Time == 0 {
			return batchErr(i, "time", ErrBadRecord, "stream readings carry a time")
		}
	}
	return nil
}

// EncodeRecords encodes readings of one device as one or more stream
// records, each at most target bytes where a single reading allows it
// (target 0 means TargetRecordBytes), and calls emit with each encoded record
// and the readings it holds. The buffer passed to emit is reused after emit
// returns.
func EncodeRecords(gateway string, rs []Reading, target int, emit func(data []byte, rs []Reading) error) error {
	if target <= 0 {
		target = TargetRecordBytes
	}
	if target > MaxRecordBytes {
		target = MaxRecordBytes
	}
	if err := checkRecordReadings(gateway, rs); err != nil {
		return err
	}
	o := &EncodeOptions{BaseName: rs[0].Device + ":", stream: true, gateway: gateway}
	var buf, scratch []byte
	for start := 0; start < len(rs); {
		bt := rs[start].Time
		// Size the chunk: each record's encoding depends only on bt.
		size := 5 // worst-case array head
		end := start
		for end < len(rs) {
			scratch = appendCBORRecord(scratch[:0], &rs[end], end == start, bt, true, o)
			if end > start && size+len(scratch) > target {
				break
			}
			size += len(scratch)
			end++
		}
		buf = appendHead(buf[:0], majorArray, uint64(end-start))
		for i := start; i < end; i++ {
			buf = appendCBORRecord(buf, &rs[i], i == start, bt, true, o)
		}
		if len(buf) > MaxRecordBytes {
			return batchErr(start, "", ErrBadRecord, "one reading encodes to %d bytes, limit %d", len(buf), MaxRecordBytes)
		}
		if err := emit(buf, rs[start:end]); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// DecodeRecord decodes a stream record written by AppendRecord or
// EncodeRecords.
func DecodeRecord(data []byte) (*Record, error) {
	return DecodeRecordInto(nil, data)
}

// DecodeRecordInto is DecodeRecord appending the readings to dst (pass a
// reused slice to avoid allocations); Record.Readings is the appended part.
func DecodeRecordInto(dst []Reading, data []byte) (*Record, error) {
	if len(data) > MaxRecordBytes {
		return nil, batchErr(-1, "", ErrBadRecord, "%d bytes, limit %d", len(data), MaxRecordBytes)
	}
	opts := DecodeOptions{stream: true, Now: 1, MaxRecords: MaxRecordBytes}
	start := len(dst)
	rs, info, err := decodeCBORPack(dst, data, &opts)
	if err != nil {
		return nil, batchErr(-1, "", ErrBadRecord, "%w", err)
	}
	device, ok := strings.CutSuffix(info.firstBn, ":")
	if !ok || !ValidDeviceID(device) {
		return nil, batchErr(-1, "bn", ErrBadRecord, "first record's bn %q is not \"{device}:\"", truncate(info.firstBn))
	}
	if !ValidDeviceID(info.gw) {
		return nil, batchErr(-1, labelGw, ErrBadRecord, "gateway id %q is missing or invalid", truncate(info.gw))
	}
	rec := &Record{Gateway: info.gw, Device: device, Readings: rs[start:]}
	for i := range rec.Readings {
		r := &rec.Readings[i]
		name, ok := strings.CutPrefix(r.Name, info.firstBn)
		if !ok || !ValidName(name) {
			return nil, batchErr(i, "n", ErrBadRecord, "name %q is not \"{device}:{metric}\"", truncate(r.Name))
		}
		r.Name = name
		r.Device = device
	}
	return rec, nil
}
