package kinesisapi

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// Records: PutRecord, PutRecords, GetRecords.

type putEntryJSON struct {
	PartitionKey    *string
	ExplicitHashKey *string
	Data            *[]byte
}

// entry validates one PutRecord(s) entry; path prefixes member names.
func (s *Server) entry(e putEntryJSON, path string) (shardstore.PutEntry, *apiError) {
	if e.Data == nil {
		return shardstore.PutEntry{}, required(path + "data")
	}
	if e.PartitionKey == nil {
		return shardstore.PutEntry{}, required(path + "partitionKey")
	}
	pk := *e.PartitionKey
	if n := utf8.RuneCountInString(pk); n < 1 || n > shardstore.MaxPartitionKeyLength {
		return shardstore.PutEntry{}, validationErr(pk, path+"partitionKey", "must have length between 1 and 256")
	}
	if len(*e.Data) > shardstore.MaxRecordBytes {
		return shardstore.PutEntry{}, validationErr("java.nio.HeapByteBuffer", path+"data", "must have length less than or equal to 1048576")
	}
	out := shardstore.PutEntry{PartitionKey: pk, Data: *e.Data}
	if e.ExplicitHashKey != nil {
		h := *e.ExplicitHashKey
		if aerr := checkHashKey(h, path+"explicitHashKey"); aerr != nil {
			return out, aerr
		}
		if _, err := shardstore.ParseHashKey(h); err != nil {
			return out, clientErr(typeInvalidArgument, "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", h)
		}
		out.ExplicitHashKey = h
	}
	return out, nil
}

func (s *Server) throttleMsg(err error) string {
	var se *shardstore.Error
	if errors.As(err, &se) {
		return upperFirst(se.Msg) + " under account " + s.opts.Account + "."
	}
	return err.Error()
}

type putRecordReq struct {
	streamRef
	putEntryJSON
	SequenceNumberForOrdering *string
}

func (s *Server) putRecord(ctx context.Context, name string, req *putRecordReq) (any, *apiError) {
	e, aerr := s.entry(req.putEntryJSON, "")
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkSeq(req.SequenceNumberForOrdering, "sequenceNumberForOrdering"); aerr != nil {
		return nil, aerr
	}
	res, err := s.store.Put(ctx, name, []shardstore.PutEntry{e})
	if err != nil {
		return nil, s.storeErr(err, name)
	}
	if err := res[0].Err; err != nil {
		if errors.Is(err, shardstore.ErrThrottled) {
			s.m.throttled.WithLabelValues("PutRecord").Inc()
		}
		return nil, s.storeErr(err, name)
	}
	s.m.records.WithLabelValues("in").Inc()
	return struct{ ShardId, SequenceNumber, EncryptionType string }{res[0].ShardID, res[0].SequenceNumber, "NONE"}, nil
}

// putRecordsReq is the PutRecords request (decoded by decodePutRecords
// when it can).
type putRecordsReq struct {
	streamRef
	Records []putEntryJSON
}

var _ fastDecoder = (*putRecordsReq)(nil)

func (r *putRecordsReq) decodeFast(body []byte) bool {
	req, ok := decodePutRecords(body)
	if ok {
		*r = req
	}
	return ok
}

func (s *Server) putRecords(ctx context.Context, name string, req *putRecordsReq) (any, *apiError) {
	if req.Records == nil {
		return nil, required("records")
	}
	if n := len(req.Records); n < 1 || n > shardstore.MaxPutEntries {
		return nil, validationErr(fmt.Sprintf("[%d records]", n), "records", "must have length between 1 and 500")
	}
	entries := make([]shardstore.PutEntry, len(req.Records))
	total := 0
	for i, r := range req.Records {
		e, aerr := s.entry(r, "")
		if aerr != nil {
			// Again, with the member path AWS puts in the message.
			_, aerr = s.entry(r, fmt.Sprintf("records.%d.member.", i+1))
			return nil, aerr
		}
		entries[i] = e
		total += len(e.PartitionKey) + len(e.Data)
	}
	if total > shardstore.MaxPutBytes {
		return nil, clientErr(typeInvalidArgument, "Records size exceeds 5 MB limit (%d bytes of data and partition keys).", total)
	}
	res, err := s.store.Put(ctx, name, entries)
	if err != nil {
		return nil, s.storeErr(err, name)
	}
	type entryOut struct {
		SequenceNumber string `json:",omitempty"`
		ShardId        string `json:",omitempty"`
		ErrorCode      string `json:",omitempty"`
		ErrorMessage   string `json:",omitempty"`
	}
	out := struct {
		FailedRecordCount int
		Records           []entryOut
		EncryptionType    string
	}{Records: make([]entryOut, len(res)), EncryptionType: "NONE"}
	for i, r := range res {
		switch {
		case r.Err == nil:
			out.Records[i] = entryOut{SequenceNumber: r.SequenceNumber, ShardId: r.ShardID}
		case errors.Is(r.Err, shardstore.ErrThrottled):
			out.FailedRecordCount++
			out.Records[i] = entryOut{ErrorCode: typeThroughputExceeded, ErrorMessage: s.throttleMsg(r.Err)}
		default:
			out.FailedRecordCount++
			out.Records[i] = entryOut{ErrorCode: typeInternalFailure, ErrorMessage: "Internal service failure."}
		}
	}
	if out.FailedRecordCount > 0 {
		s.m.throttled.WithLabelValues("PutRecords").Add(float64(out.FailedRecordCount))
	}
	s.m.records.WithLabelValues("in").Add(float64(len(res) - out.FailedRecordCount))
	return out, nil
}

type getRecordsReq struct {
	ShardIterator *string
	Limit         *int64
	StreamARN     *string
}

func (s *Server) getRecords(ctx context.Context, req *getRecordsReq) (any, *apiError) {
	if req.ShardIterator == nil {
		return nil, required("shardIterator")
	}
	if n := len(*req.ShardIterator); n < 1 || n > 512 {
		return nil, validationErr(*req.ShardIterator, "shardIterator", "must have length between 1 and 512")
	}
	if aerr := checkRange(req.Limit, "limit", 1, shardstore.MaxReadRecords); aerr != nil {
		return nil, aerr
	}
	pos, aerr := s.openIterator(*req.ShardIterator)
	if aerr != nil {
		return nil, aerr
	}
	if req.StreamARN != nil {
		if name, aerr := s.name(streamRef{StreamARN: req.StreamARN}); aerr != nil {
			return nil, aerr
		} else if name != pos.Stream {
			return nil, clientErr(typeInvalidArgument, "StreamARN %s does not match the stream of the shard iterator.", *req.StreamARN)
		}
	}
	res, err := s.store.Read(ctx, pos, orDefault(req.Limit, shardstore.MaxReadRecords))
	if err != nil {
		if errors.Is(err, shardstore.ErrThrottled) {
			s.m.throttled.WithLabelValues("GetRecords").Inc()
		}
		return nil, s.shardErr(err, pos.ShardID(), pos.Stream)
	}
	next := ""
	if !res.EndOfShard {
		next = s.iterator(res.Next)
	}
	s.m.records.WithLabelValues("out").Add(float64(len(res.Records)))
	buf := bufPool.Get().(*[]byte)
	*buf = encodeGetRecords(*buf, &res, next)
	return pooledJSON{buf}, nil
}
