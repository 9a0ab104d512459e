package kinesisapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

var (
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
	arnRE     = regexp.MustCompile(`^arn:aws[a-z-]*:kinesis:([a-z0-9-]+):(\d{12}):stream/([a-zA-Z0-9_.-]{1,128})$`)
	hashKeyRE = regexp.MustCompile(`^(0|[1-9]\d{0,38})$`)
	seqRE     = regexp.MustCompile(`^(0|[1-9]\d{0,128})$`)
)

// streamRef is how requests name a stream: StreamName, StreamARN or both.
type streamRef struct {
	StreamName *string
	StreamARN  *string
}

func (s *Server) arn(name string) string {
	return fmt.Sprintf("arn:aws:kinesis:%s:%s:stream/%s", s.opts.Region, s.opts.Account, name)
}

// name resolves a streamRef to a stream name.
func (s *Server) name(ref streamRef) (string, *apiError) {
	var name string
	if ref.StreamName != nil {
		name = *ref.StreamName
		if aerr := checkName(name, "streamName"); aerr != nil {
			return "", aerr
		}
	}
	if ref.StreamARN != nil {
		m := arnRE.FindStringSubmatch(*ref.StreamARN)
		if m == nil {
			return "", validationErr(*ref.StreamARN, "streamARN", `must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\d{12}:stream/\S+`)
		}
		if ref.StreamName != nil && m[3] != name {
			return "", clientErr(typeInvalidArgument, "StreamARN %s and StreamName %s name different streams", *ref.StreamARN, name)
		}
		if m[1] != s.opts.Region || m[2] != s.opts.Account {
			return "", clientErr(typeResourceNotFound, "Stream %s under account %s not found (this endpoint serves region %s, account %s).", m[3], m[2], s.opts.Region, s.opts.Account)
		}
		name = m[3]
	}
	if ref.StreamName == nil && ref.StreamARN == nil {
		return "", clientErr(typeInvalidArgument, "StreamName or StreamARN must be given")
	}
	return name, nil
}

func checkName(v, member string) *apiError {
	if len(v) < 1 || len(v) > 128 {
		return validationErr(v, member, "must have length between 1 and 128")
	}
	if !nameRE.MatchString(v) {
		return validationErr(v, member, "must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
	}
	return nil
}

func required(member string) *apiError {
	return clientErr(typeValidation, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

func checkRange(v *int64, member string, lo, hi int64) *apiError {
	if v != nil && (*v < lo || *v > hi) {
		return validationErr(*v, member, fmt.Sprintf("must have value between %d and %d", lo, hi))
	}
	return nil
}

func (s *Server) createStream(ctx context.Context, body []byte) (any, *apiError) {
	var req struct {
		StreamName        *string
		ShardCount        *int64
		StreamModeDetails *struct{ StreamMode string }
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	if req.StreamName == nil {
		return nil, required("streamName")
	}
	if aerr := checkName(*req.StreamName, "streamName"); aerr != nil {
		return nil, aerr
	}
	if req.StreamModeDetails != nil && req.StreamModeDetails.StreamMode == "ON_DEMAND" {
		return nil, clientErr(typeInvalidArgument, "on-demand capacity mode is not supported here: create a PROVISIONED stream with a ShardCount")
	}
	if req.ShardCount == nil {
		return nil, clientErr(typeInvalidArgument, "ShardCount is required: this endpoint supports provisioned streams only")
	}
	if aerr := checkRange(req.ShardCount, "shardCount", 1, 100000); aerr != nil {
		return nil, aerr
	}
	if err := s.store.CreateStream(ctx, *req.StreamName, int(*req.ShardCount)); err != nil {
		return nil, s.storeErr(err, *req.StreamName)
	}
	return struct{}{}, nil
}

func (s *Server) deleteStream(ctx context.Context, body []byte) (any, *apiError) {
	var req streamRef
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req)
	if aerr != nil {
		return nil, aerr
	}
	if err := s.store.DeleteStream(ctx, name); err != nil {
		return nil, s.storeErr(err, name)
	}
	return struct{}{}, nil
}

func (s *Server) describe(name string) (shardstore.StreamInfo, *apiError) {
	in, err := s.store.DescribeStream(name)
	if err != nil {
		return in, s.storeErr(err, name)
	}
	return in, nil
}

type modeJSON struct{ StreamMode string }

type metricsJSON struct{ ShardLevelMetrics []string }

func (s *Server) describeStream(_ context.Context, body []byte) (any, *apiError) {
	var req struct {
		streamRef
		Limit                 *int64
		ExclusiveStartShardId *string
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkRange(req.Limit, "limit", 1, 10000); aerr != nil {
		return nil, aerr
	}
	limit := 100
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
	after := int64(-1)
	if req.ExclusiveStartShardId != nil {
		if aerr := checkName(*req.ExclusiveStartShardId, "exclusiveStartShardId"); aerr != nil {
			return nil, aerr
		}
		if idx, ok := shardstore.ParseShardID(*req.ExclusiveStartShardId); ok {
			after = int64(idx)
		}
	}
	in, aerr := s.describe(name)
	if aerr != nil {
		return nil, aerr
	}
	shards := []shardJSON{}
	more := false
	for _, sh := range in.Shards {
		idx, _ := shardstore.ParseShardID(sh.ShardID)
		if int64(idx) <= after {
			continue
		}
		if len(shards) == limit {
			more = true
			break
		}
		shards = append(shards, toShardJSON(sh))
	}
	type desc struct {
		StreamName              string
		StreamARN               string
		StreamStatus            string
		StreamModeDetails       modeJSON
		Shards                  []shardJSON
		HasMoreShards           bool
		RetentionPeriodHours    int
		StreamCreationTimestamp epoch
		EnhancedMonitoring      []metricsJSON
		EncryptionType          string
	}
	return struct{ StreamDescription desc }{desc{
		StreamName: in.Name, StreamARN: s.arn(in.Name), StreamStatus: "ACTIVE",
		StreamModeDetails: modeJSON{"PROVISIONED"}, Shards: shards, HasMoreShards: more,
		RetentionPeriodHours: in.RetentionHours, StreamCreationTimestamp: epoch{in.Created},
		EnhancedMonitoring: []metricsJSON{{ShardLevelMetrics: []string{}}}, EncryptionType: "NONE",
	}}, nil
}

func (s *Server) describeStreamSummary(_ context.Context, body []byte) (any, *apiError) {
	var req streamRef
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req)
	if aerr != nil {
		return nil, aerr
	}
	in, aerr := s.describe(name)
	if aerr != nil {
		return nil, aerr
	}
	type summary struct {
		StreamName              string
		StreamARN               string
		StreamStatus            string
		StreamModeDetails       modeJSON
		RetentionPeriodHours    int
		StreamCreationTimestamp epoch
		EnhancedMonitoring      []metricsJSON
		EncryptionType          string
		OpenShardCount          int
		ConsumerCount           int
	}
	return struct{ StreamDescriptionSummary summary }{summary{
		StreamName: in.Name, StreamARN: s.arn(in.Name), StreamStatus: "ACTIVE",
		StreamModeDetails: modeJSON{"PROVISIONED"}, RetentionPeriodHours: in.RetentionHours,
		StreamCreationTimestamp: epoch{in.Created}, EnhancedMonitoring: []metricsJSON{{ShardLevelMetrics: []string{}}},
		EncryptionType: "NONE", OpenShardCount: in.OpenShards,
	}}, nil
}

func (s *Server) listStreams(_ context.Context, body []byte) (any, *apiError) {
	var req struct {
		Limit                    *int64
		ExclusiveStartStreamName *string
		NextToken                *string
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	if aerr := checkRange(req.Limit, "limit", 1, 10000); aerr != nil {
		return nil, aerr
	}
	limit := 100
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
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
		out.StreamSummaries = append(out.StreamSummaries, summary{n, s.arn(n), "ACTIVE", modeJSON{"PROVISIONED"}, epoch{in.Created}})
	}
	return out, nil
}

// listState is the sealed state of a ListShards NextToken.
type listState struct {
	Stream   string `json:"s"`
	ID       uint64 `json:"i"`
	After    int64  `json:"a"` // continue with shard indexes above this
	Filter   string `json:"f,omitempty"`
	FilterTs int64  `json:"t,omitempty"` // ms
}

func (s *Server) listShards(_ context.Context, body []byte) (any, *apiError) {
	var req struct {
		streamRef
		NextToken               *string
		ExclusiveStartShardId   *string
		MaxResults              *int64
		StreamCreationTimestamp *epoch
		ShardFilter             *struct {
			Type      string
			ShardId   *string
			Timestamp *epoch
		}
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	if aerr := checkRange(req.MaxResults, "maxResults", 1, 10000); aerr != nil {
		return nil, aerr
	}
	limit := 1000
	if req.MaxResults != nil {
		limit = int(*req.MaxResults)
	}
	var st listState
	if req.NextToken != nil {
		if req.StreamName != nil || req.StreamARN != nil {
			return nil, clientErr(typeInvalidArgument, "NextToken and StreamName (or StreamARN) cannot be provided together.")
		}
		if req.ExclusiveStartShardId != nil || req.ShardFilter != nil || req.StreamCreationTimestamp != nil {
			return nil, clientErr(typeInvalidArgument, "NextToken cannot be provided together with ExclusiveStartShardId, ShardFilter or StreamCreationTimestamp.")
		}
		issued, payload, err := s.sealer.open(kindToken, *req.NextToken)
		if err != nil || json.Unmarshal(payload, &st) != nil {
			return nil, clientErr(typeInvalidArgument, "Invalid NextToken.")
		}
		if s.now().Sub(issued) > listTokenTTL {
			return nil, clientErr(typeExpiredNextToken, "The NextToken has expired (it is valid for %v).", listTokenTTL)
		}
	} else {
		name, aerr := s.name(req.streamRef)
		if aerr != nil {
			return nil, aerr
		}
		st = listState{Stream: name, After: -1}
		if req.ExclusiveStartShardId != nil {
			if aerr := checkName(*req.ExclusiveStartShardId, "exclusiveStartShardId"); aerr != nil {
				return nil, aerr
			}
			if idx, ok := shardstore.ParseShardID(*req.ExclusiveStartShardId); ok {
				st.After = int64(idx)
			}
		}
		if f := req.ShardFilter; f != nil {
			st.Filter = f.Type
			switch f.Type {
			case "AT_LATEST", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON":
			case "AFTER_SHARD_ID":
				if f.ShardId == nil {
					return nil, clientErr(typeInvalidArgument, "ShardFilter of type AFTER_SHARD_ID needs a ShardId.")
				}
				if idx, ok := shardstore.ParseShardID(*f.ShardId); ok {
					st.After = max(st.After, int64(idx))
				} else {
					return nil, clientErr(typeInvalidArgument, "ShardFilter ShardId %q is not a shard id.", *f.ShardId)
				}
				st.Filter = ""
			case "AT_TIMESTAMP", "FROM_TIMESTAMP":
				if f.Timestamp == nil {
					return nil, clientErr(typeInvalidArgument, "ShardFilter of type %s needs a Timestamp.", f.Type)
				}
				st.FilterTs = f.Timestamp.UnixMilli()
			default:
				return nil, validationErr(f.Type, "shardFilter.type", "must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]")
			}
		}
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
	horizon := in.TrimHorizon.UnixMilli()
	at := max(st.FilterTs, horizon)
	keep := func(sh shardstore.ShardInfo) bool {
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
	out := struct {
		Shards    []shardJSON
		NextToken string `json:",omitempty"`
	}{Shards: []shardJSON{}}
	for _, sh := range in.Shards {
		idx, _ := shardstore.ParseShardID(sh.ShardID)
		if int64(idx) <= st.After || !keep(sh) {
			continue
		}
		if len(out.Shards) == limit {
			next := st
			last, _ := shardstore.ParseShardID(out.Shards[limit-1].ShardId)
			next.After = int64(last)
			payload, _ := json.Marshal(next)
			out.NextToken = s.sealer.seal(kindToken, s.now(), payload)
			break
		}
		out.Shards = append(out.Shards, toShardJSON(sh))
	}
	return out, nil
}

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
		if !hashKeyRE.MatchString(h) {
			return out, validationErr(h, path+"explicitHashKey", "must satisfy regular expression pattern: 0|([1-9]\\d{0,38})")
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

func (s *Server) putRecord(ctx context.Context, body []byte) (any, *apiError) {
	var req struct {
		streamRef
		putEntryJSON
		SequenceNumberForOrdering *string
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	e, aerr := s.entry(req.putEntryJSON, "")
	if aerr != nil {
		return nil, aerr
	}
	if q := req.SequenceNumberForOrdering; q != nil && !seqRE.MatchString(*q) {
		return nil, validationErr(*q, "sequenceNumberForOrdering", "must satisfy regular expression pattern: 0|([1-9]\\d{0,128})")
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

func (s *Server) putRecords(ctx context.Context, body []byte) (any, *apiError) {
	req, ok := decodePutRecords(body)
	if !ok {
		req = putRecordsReq{}
		if aerr := decode(body, &req); aerr != nil {
			return nil, aerr
		}
	}
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return nil, aerr
	}
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

func (s *Server) getShardIterator(_ context.Context, body []byte) (any, *apiError) {
	var req struct {
		streamRef
		ShardId                *string
		ShardIteratorType      *string
		StartingSequenceNumber *string
		Timestamp              *epoch
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	if req.ShardId == nil {
		return nil, required("shardId")
	}
	if aerr := checkName(*req.ShardId, "shardId"); aerr != nil {
		return nil, aerr
	}
	if req.ShardIteratorType == nil {
		return nil, required("shardIteratorType")
	}
	typ := shardstore.IteratorType(*req.ShardIteratorType)
	start := shardstore.Start{Type: typ}
	switch typ {
	case shardstore.TrimHorizon, shardstore.Latest, shardstore.AtSequenceNumber, shardstore.AfterSequenceNumber, shardstore.AtTimestamp:
	default:
		return nil, validationErr(typ, "shardIteratorType", "must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]")
	}
	if q := req.StartingSequenceNumber; q != nil {
		if !seqRE.MatchString(*q) {
			return nil, validationErr(*q, "startingSequenceNumber", "must satisfy regular expression pattern: 0|([1-9]\\d{0,128})")
		}
		start.SequenceNumber = *q
	}
	switch typ {
	case shardstore.AtSequenceNumber, shardstore.AfterSequenceNumber:
		if start.SequenceNumber == "" {
			return nil, clientErr(typeInvalidArgument, "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and no StartingSequenceNumber.", typ)
		}
	case shardstore.TrimHorizon, shardstore.Latest:
		if start.SequenceNumber != "" {
			return nil, clientErr(typeInvalidArgument, "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and also a StartingSequenceNumber.", typ)
		}
	case shardstore.AtTimestamp:
		if req.Timestamp == nil {
			return nil, clientErr(typeInvalidArgument, "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.")
		}
		start.Timestamp = req.Timestamp.Time
	}
	pos, err := s.store.Seek(name, *req.ShardId, start)
	if err != nil {
		if errors.Is(err, shardstore.ErrShardNotFound) {
			return nil, clientErr(typeResourceNotFound, "Shard %s in stream %s under account %s does not exist", *req.ShardId, name, s.opts.Account)
		}
		return nil, s.storeErr(err, name)
	}
	return struct{ ShardIterator string }{s.iterator(pos)}, nil
}

func (s *Server) iterator(pos shardstore.Position) string {
	b, _ := pos.MarshalBinary()
	return s.sealer.seal(kindIterator, s.now(), b)
}

func (s *Server) getRecords(ctx context.Context, body []byte) (any, *apiError) {
	var req struct {
		ShardIterator *string
		Limit         *int64
		StreamARN     *string
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	if req.ShardIterator == nil {
		return nil, required("shardIterator")
	}
	if n := len(*req.ShardIterator); n < 1 || n > 512 {
		return nil, validationErr(*req.ShardIterator, "shardIterator", "must have length between 1 and 512")
	}
	if aerr := checkRange(req.Limit, "limit", 1, shardstore.MaxReadRecords); aerr != nil {
		return nil, aerr
	}
	limit := shardstore.MaxReadRecords
	if req.Limit != nil {
		limit = int(*req.Limit)
	}
	issued, payload, err := s.sealer.open(kindIterator, *req.ShardIterator)
	var pos shardstore.Position
	if err != nil || pos.UnmarshalBinary(payload) != nil {
		return nil, clientErr(typeInvalidArgument, "Invalid ShardIterator.")
	}
	if now := s.now(); now.Sub(issued) > s.opts.IteratorTTL {
		return nil, clientErr(typeExpiredIterator, "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.",
			issued.UTC().Format(time.UnixDate), now.UTC().Format(time.UnixDate), s.opts.IteratorTTL.Milliseconds())
	}
	if req.StreamARN != nil {
		if name, aerr := s.name(streamRef{StreamARN: req.StreamARN}); aerr != nil {
			return nil, aerr
		} else if name != pos.Stream {
			return nil, clientErr(typeInvalidArgument, "StreamARN %s does not match the stream of the shard iterator.", *req.StreamARN)
		}
	}
	res, err := s.store.Read(ctx, pos, limit)
	if err != nil {
		if errors.Is(err, shardstore.ErrThrottled) {
			s.m.throttled.WithLabelValues("GetRecords").Inc()
		}
		if errors.Is(err, shardstore.ErrShardNotFound) {
			return nil, clientErr(typeResourceNotFound, "Shard %s in stream %s under account %s does not exist", pos.ShardID(), pos.Stream, s.opts.Account)
		}
		return nil, s.storeErr(err, pos.Stream)
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

func (s *Server) splitShard(ctx context.Context, body []byte) (any, *apiError) {
	var req struct {
		streamRef
		ShardToSplit       *string
		NewStartingHashKey *string
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	if req.ShardToSplit == nil {
		return nil, required("shardToSplit")
	}
	if aerr := checkName(*req.ShardToSplit, "shardToSplit"); aerr != nil {
		return nil, aerr
	}
	if req.NewStartingHashKey == nil {
		return nil, required("newStartingHashKey")
	}
	if !hashKeyRE.MatchString(*req.NewStartingHashKey) {
		return nil, validationErr(*req.NewStartingHashKey, "newStartingHashKey", "must satisfy regular expression pattern: 0|([1-9]\\d{0,38})")
	}
	h, err := shardstore.ParseHashKey(*req.NewStartingHashKey)
	if err != nil {
		return nil, clientErr(typeInvalidArgument, "NewStartingHashKey %s must be in the range [0, 2^128-1].", *req.NewStartingHashKey)
	}
	if err := s.store.SplitShard(ctx, name, *req.ShardToSplit, h); err != nil {
		return nil, s.storeErr(err, name)
	}
	return struct{}{}, nil
}

func (s *Server) mergeShards(ctx context.Context, body []byte) (any, *apiError) {
	var req struct {
		streamRef
		ShardToMerge         *string
		AdjacentShardToMerge *string
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	for _, m := range []struct {
		member string
		v      *string
	}{{"shardToMerge", req.ShardToMerge}, {"adjacentShardToMerge", req.AdjacentShardToMerge}} {
		member, v := m.member, m.v
		if v == nil {
			return nil, required(member)
		}
		if aerr := checkName(*v, member); aerr != nil {
			return nil, aerr
		}
	}
	if err := s.store.MergeShards(ctx, name, *req.ShardToMerge, *req.AdjacentShardToMerge); err != nil {
		return nil, s.storeErr(err, name)
	}
	return struct{}{}, nil
}

func (s *Server) updateShardCount(ctx context.Context, body []byte) (any, *apiError) {
	var req struct {
		streamRef
		TargetShardCount *int64
		ScalingType      *string
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	if req.TargetShardCount == nil {
		return nil, required("targetShardCount")
	}
	if aerr := checkRange(req.TargetShardCount, "targetShardCount", 1, 100000); aerr != nil {
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

func (s *Server) retention(ctx context.Context, body []byte, increase bool) (any, *apiError) {
	var req struct {
		streamRef
		RetentionPeriodHours *int64
	}
	if aerr := decode(body, &req); aerr != nil {
		return nil, aerr
	}
	name, aerr := s.name(req.streamRef)
	if aerr != nil {
		return nil, aerr
	}
	if req.RetentionPeriodHours == nil {
		return nil, required("retentionPeriodHours")
	}
	if aerr := checkRange(req.RetentionPeriodHours, "retentionPeriodHours", 1, 1<<31-1); aerr != nil {
		return nil, aerr
	}
	h := int(*req.RetentionPeriodHours)
	var err error
	if increase {
		err = s.store.IncreaseRetention(ctx, name, h)
	} else {
		err = s.store.DecreaseRetention(ctx, name, h)
	}
	if err != nil {
		return nil, s.storeErr(err, name)
	}
	return struct{}{}, nil
}

func (s *Server) increaseRetention(ctx context.Context, body []byte) (any, *apiError) {
	return s.retention(ctx, body, true)
}

func (s *Server) decreaseRetention(ctx context.Context, body []byte) (any, *apiError) {
	return s.retention(ctx, body, false)
}
