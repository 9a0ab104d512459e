package kinesisapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// epoch is a timestamp in the JSON 1.1 protocol: seconds since the Unix
// epoch as a number (fraction = milliseconds). Decoding also takes a
// numeric string or RFC 3339 text.
type epoch struct{ time.Time }

func (e epoch) MarshalJSON() ([]byte, error) { return appendEpoch(nil, e.Time), nil }

func (e *epoch) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		return e.setSeconds(f)
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("timestamp %s is neither a number nor a string", b)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return e.setSeconds(f)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("timestamp %q is neither epoch seconds nor RFC 3339", s)
	}
	e.Time = t
	return nil
}

func (e *epoch) setSeconds(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return fmt.Errorf("timestamp %v is out of range", f)
	}
	sec, frac := math.Modf(f)
	e.Time = time.Unix(int64(sec), int64(math.Round(frac*1000))*int64(time.Millisecond))
	return nil
}

// appendEpoch appends t as epoch seconds with millisecond precision.
func appendEpoch(b []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	b = strconv.AppendInt(b, ms/1000, 10)
	if r := ms % 1000; r != 0 {
		b = append(b, '.', byte('0'+r/100), byte('0'+r/10%10), byte('0'+r%10))
	}
	return b
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// encodeGetRecords writes the GetRecords response by hand: it is the one
// hot response (up to 10,000 records), and appending is several times
// faster than reflection.
func encodeGetRecords(b []byte, res *shardstore.ReadResult, next string) []byte {
	// Per record: 105 bytes of names and punctuation, a 38-digit sequence
	// number, up to 14 for the timestamp, the quoted key and the data.
	size := 256 + len(next)
	for i := range res.Records {
		r := &res.Records[i]
		size += 160 + len(r.PartitionKey) + base64.StdEncoding.EncodedLen(len(r.Data))
	}
	b = slices.Grow(b[:0], size)
	b = append(b, `{"Records":[`...)
	for i := range res.Records {
		r := &res.Records[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"SequenceNumber":"`...)
		b = append(b, r.SequenceNumber...)
		b = append(b, `","ApproximateArrivalTimestamp":`...)
		b = appendEpoch(b, r.ApproximateArrivalTimestamp)
		b = append(b, `,"Data":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Data)
		b = append(b, `","PartitionKey":`...)
		b = appendString(b, r.PartitionKey)
		b = append(b, '}')
	}
	b = append(b, `],"MillisBehindLatest":`...)
	b = strconv.AppendInt(b, res.MillisBehindLatest, 10)
	if next != "" {
		b = append(b, `,"NextShardIterator":"`...)
		b = append(b, next...)
		b = append(b, '"')
	}
	if res.EndOfShard {
		b = append(b, `,"ChildShards":`...)
		cs := make([]childShardJSON, len(res.ChildShards))
		for i, c := range res.ChildShards {
			cs[i] = childShardJSON{ShardId: c.ShardID, ParentShards: c.ParentShards,
				HashKeyRange: hashKeyRangeJSON{c.StartingHashKey.String(), c.EndingHashKey.String()}}
		}
		enc, _ := json.Marshal(cs)
		b = append(b, enc...)
	}
	return append(b, '}')
}

type hashKeyRangeJSON struct {
	StartingHashKey string
	EndingHashKey   string
}

type seqRangeJSON struct {
	StartingSequenceNumber string
	EndingSequenceNumber   string `json:",omitempty"`
}

type shardJSON struct {
	ShardId               string
	ParentShardId         string `json:",omitempty"`
	AdjacentParentShardId string `json:",omitempty"`
	HashKeyRange          hashKeyRangeJSON
	SequenceNumberRange   seqRangeJSON
}

type childShardJSON struct {
	ShardId      string
	ParentShards []string
	HashKeyRange hashKeyRangeJSON
}

func toShardJSON(in shardstore.ShardInfo) shardJSON {
	return shardJSON{
		ShardId:               in.ShardID,
		ParentShardId:         in.ParentShardID,
		AdjacentParentShardId: in.AdjacentParentShardID,
		HashKeyRange:          hashKeyRangeJSON{in.StartingHashKey.String(), in.EndingHashKey.String()},
		SequenceNumberRange:   seqRangeJSON{in.StartingSequenceNumber, in.EndingSequenceNumber},
	}
}
