package kinesisapi

import (
	"context"
	"errors"
	"time"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// Shard iterators: GetShardIterator, and the sealing and opening of the
// iterators that GetRecords takes and returns (tokens.go).

type getShardIteratorReq struct {
	streamRef
	ShardId                *string
	ShardIteratorType      *string
	StartingSequenceNumber *string
	Timestamp              *epoch
}

func (s *Server) getShardIterator(_ context.Context, name string, req *getShardIteratorReq) (any, *apiError) {
	if aerr := requiredName(req.ShardId, "shardId"); aerr != nil {
		return nil, aerr
	}
	if req.ShardIteratorType == nil {
		return nil, required("shardIteratorType")
	}
	start, aerr := iteratorStart(req)
	if aerr != nil {
		return nil, aerr
	}
	pos, err := s.store.Seek(name, *req.ShardId, start)
	if err != nil {
		return nil, s.shardErr(err, *req.ShardId, name)
	}
	return struct{ ShardIterator string }{s.iterator(pos)}, nil
}

// iteratorStart checks the iterator type and the members it needs.
func iteratorStart(req *getShardIteratorReq) (shardstore.Start, *apiError) {
	typ := shardstore.IteratorType(*req.ShardIteratorType)
	start := shardstore.Start{Type: typ}
	switch typ {
	case shardstore.TrimHorizon, shardstore.Latest, shardstore.AtSequenceNumber, shardstore.AfterSequenceNumber, shardstore.AtTimestamp:
	default:
		return start, validationErr(typ, "shardIteratorType", "must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]")
	}
	if aerr := checkSeq(req.StartingSequenceNumber, "startingSequenceNumber"); aerr != nil {
		return start, aerr
	}
	if req.StartingSequenceNumber != nil {
		start.SequenceNumber = *req.StartingSequenceNumber
	}
	const both = "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and %s StartingSequenceNumber."
	switch typ {
	case shardstore.AtSequenceNumber, shardstore.AfterSequenceNumber:
		if start.SequenceNumber == "" {
			return start, clientErr(typeInvalidArgument, both, typ, "no")
		}
	case shardstore.TrimHorizon, shardstore.Latest:
		if start.SequenceNumber != "" {
			return start, clientErr(typeInvalidArgument, both, typ, "also a")
		}
	case shardstore.AtTimestamp:
		if req.Timestamp == nil {
			return start, clientErr(typeInvalidArgument, "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.")
		}
		start.Timestamp = req.Timestamp.Time
	}
	return start, nil
}

// shardErr is storeErr for a call on one shard, which AWS reports missing
// in its own words.
func (s *Server) shardErr(err error, shard, stream string) *apiError {
	if errors.Is(err, shardstore.ErrShardNotFound) {
		return clientErr(typeResourceNotFound, "Shard %s in stream %s under account %s does not exist", shard, stream, s.opts.Account)
	}
	return s.storeErr(err, stream)
}

// iterator seals a shard iterator for pos.
func (s *Server) iterator(pos shardstore.Position) string {
	b, _ := pos.MarshalBinary()
	return s.sealer.seal(kindIterator, s.now(), b)
}

// openIterator opens a shard iterator that this server sealed and that
// has not expired.
func (s *Server) openIterator(it string) (shardstore.Position, *apiError) {
	issued, payload, err := s.sealer.open(kindIterator, it)
	var pos shardstore.Position
	if err != nil || pos.UnmarshalBinary(payload) != nil {
		return pos, clientErr(typeInvalidArgument, "Invalid ShardIterator.")
	}
	if now := s.now(); now.Sub(issued) > s.opts.IteratorTTL {
		return pos, clientErr(typeExpiredIterator, "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			issued.UTC().Format(time.UnixDate), now.UTC().Format(time.UnixDate), s.opts.IteratorTTL.Milliseconds())
	}
	return pos, nil
}
