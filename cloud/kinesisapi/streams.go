package kinesisapi

import (
	"context"
	"encoding/base64"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// Streams: CreateStream, DeleteStream, DescribeStream(Summary),
// ListStreams and the retention period.

type createStreamReq struct {
	StreamName        *string
	ShardCount        *int64
	StreamModeDetails *struct{ StreamMode string }
}

func (s *Server) createStream(ctx context.Context, req *createStreamReq) (any, *apiError) {
	if aerr := requiredName(req.StreamName, "streamName"); aerr != nil {
		return nil, aerr
	}
	mode, aerr := streamMode(req.StreamModeDetails)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkRange(req.ShardCount, "shardCount", 1, 100000); aerr != nil {
		return nil, aerr
	}
	shards := 0
	switch {
	case req.ShardCount != nil:
		shards = int(*req.ShardCount)
	case mode == shardstore.Provisioned:
		return nil, clientErr(typeInvalidArgument, "ShardCount is required for a PROVISIONED stream (or ask for StreamModeDetails ON_DEMAND)")
	}
	return s.noContent(s.store.CreateStreamMode(ctx, *req.StreamName, shards, mode), *req.StreamName)
}

// streamMode reads StreamModeDetails (absent: PROVISIONED).
func streamMode(d *struct{ StreamMode string }) (shardstore.StreamMode, *apiError) {
	if d == nil {
		return shardstore.Provisioned, nil
	}
	switch m := shardstore.StreamMode(d.StreamMode); m {
	case shardstore.Provisioned, shardstore.OnDemand:
		return m, nil
	}
	return "", validationErr(d.StreamMode, "streamModeDetails.streamMode", "must satisfy enum value set: [PROVISIONED, ON_DEMAND]")
}

type updateStreamModeReq struct {
	streamRef
	StreamModeDetails *struct{ StreamMode string }
}

func (s *Server) updateStreamMode(ctx context.Context, name string, req *updateStreamModeReq) (any, *apiError) {
	if req.StreamModeDetails == nil {
		return nil, required("streamModeDetails")
	}
	mode, aerr := streamMode(req.StreamModeDetails)
	if aerr != nil {
		return nil, aerr
	}
	return s.noContent(s.store.UpdateStreamMode(ctx, name, mode), name)
}

func (s *Server) deleteStream(ctx context.Context, name string, _ *streamRef) (any, *apiError) {
	return s.noContent(s.store.DeleteStream(ctx, name), name)
}

type modeJSON struct{ StreamMode string }

type metricsJSON struct{ ShardLevelMetrics []string }

// streamHead and streamTail are the members that DescribeStream and
// DescribeStreamSummary share, each run in the order AWS sends it.
type streamHead struct {
	StreamName        string
	StreamARN         string
	StreamStatus      string
	StreamModeDetails modeJSON
}

type streamTail struct {
	RetentionPeriodHours    int
	StreamCreationTimestamp epoch
	EnhancedMonitoring      []metricsJSON
	EncryptionType          string
}

func (s *Server) streamJSON(in shardstore.StreamInfo) (streamHead, streamTail) {
	return streamHead{StreamName: in.Name, StreamARN: s.arn(in.Name), StreamStatus: "ACTIVE", StreamModeDetails: modeJSON{string(in.Mode)}},
		streamTail{RetentionPeriodHours: in.RetentionHours, StreamCreationTimestamp: epoch{in.Created},
			EnhancedMonitoring: []metricsJSON{{ShardLevelMetrics: []string{}}}, EncryptionType: "NONE"}
}

type describeStreamReq struct {
	streamRef
	Limit                 *int64
	ExclusiveStartShardId *string
}

func (s *Server) describeStream(_ context.Context, name string, req *describeStreamReq) (any, *apiError) {
	if aerr := checkRange(req.Limit, "limit", 1, 10000); aerr != nil {
		return nil, aerr
	}
	after, aerr := startAfter(req.ExclusiveStartShardId)
	if aerr != nil {
		return nil, aerr
	}
	in, aerr := s.describe(name)
	if aerr != nil {
		return nil, aerr
	}
	type desc struct {
		streamHead
		Shards        []shardJSON
		HasMoreShards bool
		streamTail
	}
	d := desc{}
	d.streamHead, d.streamTail = s.streamJSON(in)
	d.Shards, d.HasMoreShards = pageShards(in.Shards, after, orDefault(req.Limit, 100), nil)
	return struct{ StreamDescription desc }{d}, nil
}

func (s *Server) describeStreamSummary(_ context.Context, name string, _ *streamRef) (any, *apiError) {
	in, aerr := s.describe(name)
	if aerr != nil {
		return nil, aerr
	}
	type summary struct {
		streamHead
		streamTail
		OpenShardCount int
		ConsumerCount  int
	}
	sum := summary{OpenShardCount: in.OpenShards}
	sum.streamHead, sum.streamTail = s.streamJSON(in)
	return struct{ StreamDescriptionSummary summary }{sum}, nil
}

type listStreamsReq struct {
	Limit                    *int64
	ExclusiveStartStreamName *string
	NextToken                *string
}

func (s *Server) listStreams(_ context.Context, req *listStreamsReq) (any, *apiError) {
	if aerr := checkRange(req.Limit, "limit", 1, 10000); aerr != nil {
		return nil, aerr
	}
	limit := orDefault(req.Limit, 100)
	after := ""
	if req.ExclusiveStartStreamName != nil {
		after = *req.ExclusiveStartStreamName
	}
	if req.NextToken != nil {
		b, err := base64.RawURLEncoding.DecodeString(*req.NextToken)
		if err != nil || !shardstore.ValidStreamName(string(b)) {
			return nil, clientErr(typeInvalidArgument, "Invalid NextToken.")
		}
		after = max(after, string(b))
	}
	type summary struct {
		StreamName              string
		StreamARN               string
		StreamStatus            string
		StreamModeDetails       modeJSON
		StreamCreationTimestamp epoch
	}
	var out struct {
		StreamNames     []string
		HasMoreStreams  bool
		NextToken       string `json:",omitempty"`
		StreamSummaries []summary
	}
	out.StreamNames, out.StreamSummaries = []string{}, []summary{}
	for _, n := range s.store.ListStreams() {
		if n <= after {
			continue
		}
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = true
			out.NextToken = base64.RawURLEncoding.EncodeToString([]byte(out.StreamNames[limit-1]))
			break
		}
		in, err := s.store.DescribeStream(n)
		if err != nil {
			continue // deleted meanwhile
		}
		out.StreamNames = append(out.StreamNames, n)
		out.StreamSummaries = append(out.StreamSummaries, summary{n, s.arn(n), "ACTIVE", modeJSON{string(in.Mode)}, epoch{in.Created}})
	}
	return out, nil
}

type retentionReq struct {
	streamRef
	RetentionPeriodHours *int64
}

func (s *Server) increaseRetention(ctx context.Context, name string, req *retentionReq) (any, *apiError) {
	return s.retention(ctx, name, req, (*shardstore.Store).IncreaseRetention)
}

func (s *Server) decreaseRetention(ctx context.Context, name string, req *retentionReq) (any, *apiError) {
	return s.retention(ctx, name, req, (*shardstore.Store).DecreaseRetention)
}

func (s *Server) retention(ctx context.Context, name string, req *retentionReq, set func(*shardstore.Store, context.Context, string, int) error) (any, *apiError) {
	if aerr := requiredRange(req.RetentionPeriodHours, "retentionPeriodHours", 1, 1<<31-1); aerr != nil {
		return nil, aerr
	}
	return s.noContent(set(s.store, ctx, name, int(*req.RetentionPeriodHours)), name)
}
