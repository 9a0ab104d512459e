package kinesisapi

import (
	"context"
	"encoding/json"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// Shards: ListShards, SplitShard, MergeShards, UpdateShardCount.

type listShardsReq struct {
	streamRef
	NextToken               *string
	ExclusiveStartShardId   *string
	MaxResults              *int64
	StreamCreationTimestamp *epoch
	ShardFilter             *shardFilterJSON
}

type shardFilterJSON struct {
	Type      string
	ShardId   *string
	Timestamp *epoch
}

// listState is the sealed state of a ListShards NextToken.
type listState struct {
	Stream   string `json:"s"`
	ID       uint64 `json:"i"`
	After    int64  `json:"a"` // continue with shard indexes above this
	Filter   string `json:"f,omitempty"`
	FilterTs int64  `json:"t,omitempty"` // ms
}

func (s *Server) listShards(_ context.Context, req *listShardsReq) (any, *apiError) {
	if aerr := checkRange(req.MaxResults, "maxResults", 1, 10000); aerr != nil {
		return nil, aerr
	}
	limit := orDefault(req.MaxResults, 1000)
	var st listState
	var aerr *apiError
	if req.NextToken != nil {
		st, aerr = s.resumeListing(req)
	} else {
		st, aerr = s.startListing(req)
	}
	if aerr != nil {
		return nil, aerr
	}
	in, aerr := s.describe(st.Stream)
	if aerr != nil {
		return nil, aerr
	}
	if req.NextToken != nil && in.ID != st.ID {
		return nil, clientErr(typeResourceNotFound, "Stream %s under account %s not found (it was deleted since the NextToken was issued).", st.Stream, s.opts.Account)
	}
	if req.StreamCreationTimestamp != nil && req.StreamCreationTimestamp.UnixMilli() != in.Created.UnixMilli() {
		return nil, clientErr(typeResourceNotFound, "Stream %s under account %s created at %v not found.", st.Stream, s.opts.Account, req.StreamCreationTimestamp.UTC())
	}
	st.ID = in.ID
	out := struct {
		Shards    []shardJSON
		NextToken string `json:",omitempty"`
	}{}
	var more bool
	out.Shards, more = pageShards(in.Shards, st.After, limit, st.keep(in.TrimHorizon.UnixMilli()))
	if more {
		next := st
		last, _ := shardstore.ParseShardID(out.Shards[limit-1].ShardId)
		next.After = int64(last)
		payload, _ := json.Marshal(next)
		out.NextToken = s.sealer.seal(kindToken, s.now(), payload)
	}
	return out, nil
}

// resumeListing opens a ListShards NextToken, which must come alone.
func (s *Server) resumeListing(req *listShardsReq) (listState, *apiError) {
	var st listState
	if req.StreamName != nil || req.StreamARN != nil {
		return st, clientErr(typeInvalidArgument, "NextToken and StreamName (or StreamARN) cannot be provided together.")
	}
	if req.ExclusiveStartShardId != nil || req.ShardFilter != nil || req.StreamCreationTimestamp != nil {
		return st, clientErr(typeInvalidArgument, "NextToken cannot be provided together with ExclusiveStartShardId, ShardFilter or StreamCreationTimestamp.")
	}
	issued, payload, err := s.sealer.open(kindToken, *req.NextToken)
	if err != nil || json.Unmarshal(payload, &st) != nil {
		return st, clientErr(typeInvalidArgument, "Invalid NextToken.")
	}
	if s.now().Sub(issued) > listTokenTTL {
		return st, clientErr(typeExpiredNextToken, "The NextToken has expired (it is valid for %v).", listTokenTTL)
	}
	return st, nil
}

// startListing is the state of a first ListShards call: its stream,
// ExclusiveStartShardId and ShardFilter.
func (s *Server) startListing(req *listShardsReq) (listState, *apiError) {
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return listState{}, aerr
	}
	after, aerr := startAfter(req.ExclusiveStartShardId)
	if aerr != nil {
		return listState{}, aerr
	}
	st := listState{Stream: name, After: after}
	f := req.ShardFilter
	if f == nil {
		return st, nil
	}
	st.Filter = f.Type
	switch f.Type {
	case "AT_LATEST", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON":
	case "AFTER_SHARD_ID":
		if f.ShardId == nil {
			return st, clientErr(typeInvalidArgument, "ShardFilter of type AFTER_SHARD_ID needs a ShardId.")
		}
		idx, ok := shardstore.ParseShardID(*f.ShardId)
		if !ok {
			return st, clientErr(typeInvalidArgument, "ShardFilter ShardId %q is not a shard id.", *f.ShardId)
		}
		st.After = max(st.After, int64(idx))
		st.Filter = ""
	case "AT_TIMESTAMP", "FROM_TIMESTAMP":
		if f.Timestamp == nil {
			return st, clientErr(typeInvalidArgument, "ShardFilter of type %s needs a Timestamp.", f.Type)
		}
		st.FilterTs = f.Timestamp.UnixMilli()
	default:
		return st, validationErr(f.Type, "shardFilter.type", "must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]")
	}
	return st, nil
}

// keep is the listing's ShardFilter, given the stream's trim horizon (ms).
func (st listState) keep(horizon int64) func(shardstore.ShardInfo) bool {
	at := max(st.FilterTs, horizon)
	return func(sh shardstore.ShardInfo) bool {
		created, closed := sh.Created.UnixMilli(), sh.Closed.UnixMilli()
		switch st.Filter {
		case "AT_LATEST":
			return sh.Open()
		case "AT_TRIM_HORIZON":
			return created <= horizon && (sh.Open() || closed >= horizon)
		case "AT_TIMESTAMP":
			return created <= at && (sh.Open() || closed >= at)
		case "FROM_TIMESTAMP":
			return sh.Open() || closed >= at
		}
		return true // FROM_TRIM_HORIZON (default); DescribeStream lists live shards only
	}
}

type splitShardReq struct {
	streamRef
	ShardToSplit       *string
	NewStartingHashKey *string
}

func (s *Server) splitShard(ctx context.Context, name string, req *splitShardReq) (any, *apiError) {
	if aerr := requiredName(req.ShardToSplit, "shardToSplit"); aerr != nil {
		return nil, aerr
	}
	if req.NewStartingHashKey == nil {
		return nil, required("newStartingHashKey")
	}
	if aerr := checkHashKey(*req.NewStartingHashKey, "newStartingHashKey"); aerr != nil {
		return nil, aerr
	}
	h, err := shardstore.ParseHashKey(*req.NewStartingHashKey)
	if err != nil {
		return nil, clientErr(typeInvalidArgument, "NewStartingHashKey %s must be in the range [0, 2^128-1].", *req.NewStartingHashKey)
	}
	return s.noContent(s.store.SplitShard(ctx, name, *req.ShardToSplit, h), name)
}

type mergeShardsReq struct {
	streamRef
	ShardToMerge         *string
	AdjacentShardToMerge *string
}

func (s *Server) mergeShards(ctx context.Context, name string, req *mergeShardsReq) (any, *apiError) {
	if aerr := firstErr(requiredName(req.ShardToMerge, "shardToMerge"), requiredName(req.AdjacentShardToMerge, "adjacentShardToMerge")); aerr != nil {
		return nil, aerr
	}
	return s.noContent(s.store.MergeShards(ctx, name, *req.ShardToMerge, *req.AdjacentShardToMerge), name)
}

type updateShardCountReq struct {
	streamRef
	TargetShardCount *int64
	ScalingType      *string
}

func (s *Server) updateShardCount(ctx context.Context, name string, req *updateShardCountReq) (any, *apiError) {
	if aerr := requiredRange(req.TargetShardCount, "targetShardCount", 1, 100000); aerr != nil {
		return nil, aerr
	}
	if req.ScalingType == nil {
		return nil, required("scalingType")
	}
	if *req.ScalingType != "UNIFORM_SCALING" {
		return nil, validationErr(*req.ScalingType, "scalingType", "must satisfy enum value set: [UNIFORM_SCALING]")
	}
	target := int(*req.TargetShardCount)
	prev, err := s.store.UpdateShardCount(ctx, name, target)
	if err != nil {
		return nil, s.storeErr(err, name)
	}
	return struct {
		StreamName        string
		StreamARN         string
		CurrentShardCount int
		TargetShardCount  int
	}{name, s.arn(name), prev, target}, nil
}
