package verify

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/tributary-iot/tributary/internal/backoff"
)

// KinesisAPI is what the verifier calls: *kinesis.Client has it.
type KinesisAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

var _ KinesisAPI = (*kinesis.Client)(nil)

// ClientConfig says how to reach the Kinesis API.
type ClientConfig struct {
	// Endpoint is the base URL of a Kinesis-compatible API (the cloud's
	// embedded store, kinesalite); empty for Amazon Kinesis itself.
	Endpoint string
	Region   string // default us-east-1
	// AccessKeyID and SecretAccessKey sign requests to Endpoint (any pair
	// does unless the embedded store checks signatures). Against Amazon
	// Kinesis (no Endpoint) leave them empty: the default AWS credential
	// chain applies.
	AccessKeyID, SecretAccessKey string
}

// NewClient returns the unmodified SDK client for cc. It lets
// config.LoadDefaultConfig build the HTTP client, so AWS_CA_BUNDLE and the
// other standard settings apply.
func NewClient(ctx context.Context, cc ClientConfig) (*kinesis.Client, error) {
	region := cc.Region
	if region == "" {
		region = "us-east-1"
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		config.WithRetryer(func() aws.Retryer {
			// Throttling is handled per shard here; the SDK's retry
			// quota would turn it into opaque "quota exceeded" errors.
			return retry.NewStandard(func(o *retry.StandardOptions) { o.RateLimiter = ratelimit.None })
		}),
	}
	if cc.AccessKeyID != "" || cc.Endpoint != "" {
		id, secret := cc.AccessKeyID, cc.SecretAccessKey
		if id == "" {
			id, secret = "tributary-verify", "tributary-verify" // a local API accepts any
		}
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("verify: AWS config: %w", err)
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if cc.Endpoint != "" {
			o.BaseEndpoint = aws.String(strings.TrimSuffix(cc.Endpoint, "/"))
		}
	}), nil
}

// ReadOptions tune ReadStream.
type ReadOptions struct {
	Stream string
	// From, if set, starts every shard AT_TIMESTAMP From instead of at
	// TRIM_HORIZON (to skip earlier runs still in the stream).
	From time.Time
	// Settle ends the read once every shard has caught up and no record
	// arrived for this long (default 10s).
	Settle time.Duration
	// Poll is the pause between rounds that returned nothing (default
	// 200ms).
	Poll time.Duration
	// Limit is GetRecords' Limit (default 10,000, the maximum).
	Limit int32
	// ListEvery is how often shards are listed again to find children of
	// a split or merge during the read (default 5s; also after a shard
	// ends).
	ListEvery time.Duration
	// Progress, if set, is called every ProgressEvery (default 5s).
	Progress      func(ReadStats)
	ProgressEvery time.Duration
}

func (o ReadOptions) withDefaults() ReadOptions {
	if o.Settle <= 0 {
		o.Settle = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.Limit <= 0 {
		o.Limit = 10_000
	}
	if o.ListEvery <= 0 {
		o.ListEvery = 5 * time.Second
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	return o
}

// ReadStats describe a read.
type ReadStats struct {
	Stream   string `json:"stream"`
	Shards   int    `json:"shards"`   // shards listed
	Finished int    `json:"finished"` // closed shards read to their end
	Records  uint64 `json:"records"`
	Bytes    uint64 `json:"bytes"`
	Calls    uint64 `json:"get_records_calls"`
	Throttle uint64 `json:"throttled"`
	// BehindMs is the largest MillisBehindLatest of the last round.
	BehindMs int64 `json:"behind_ms"`
	// CaughtUp is true when the read ended because every shard had caught
	// up and the stream stayed quiet for the settle period; false when it
	// hit the deadline first.
	CaughtUp bool    `json:"caught_up"`
	Seconds  float64 `json:"seconds"`
}

type shardState struct {
	id               string
	parent, adjacent string
	started, done    bool
	iter             string
	after            string // last sequence number handled
	caughtUp         bool
	wait             time.Time // throttled until
	backoff          backoff.Backoff
}

// ReadStream reads stream from its start through api, handing every record
// to handle in stream order per shard, parents finished before their
// children start, until every shard has caught up and the stream stayed
// quiet for o.Settle, or ctx ends (a deadline is a normal end: CaughtUp
// false). It fails on an API error other than throttling and expired
// iterators.
func ReadStream(ctx context.Context, api KinesisAPI, o ReadOptions, handle func(*Record)) (st ReadStats, err error) {
	o = o.withDefaults()
	st.Stream = o.Stream
	begin := time.Now()
	defer func() { st.Seconds = time.Since(begin).Seconds() }()
	shards := map[string]*shardState{}
	var order []*shardState
	var listed time.Time
	relist := true
	lastRecord := begin
	nextProgress := begin.Add(o.ProgressEvery)
	for {
		if ctx.Err() != nil {
			return st, ctxEnd(ctx)
		}
		if relist || time.Since(listed) >= o.ListEvery {
			list, err := listShards(ctx, api, o.Stream)
			if err != nil {
				if ctx.Err() != nil {
					return st, ctxEnd(ctx)
				}
				return st, err
			}
			for _, s := range list {
				id := aws.ToString(s.ShardId)
				if _, ok := shards[id]; ok || id == "" {
					continue
				}
				ss := &shardState{backoff: backoff.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: backoff.None}, id: id, parent: aws.ToString(s.ParentShardId), adjacent: aws.ToString(s.AdjacentParentShardId)}
				shards[id] = ss
				order = append(order, ss)
			}
			slices.SortFunc(order, func(a, b *shardState) int { return strings.Compare(a.id, b.id) })
			st.Shards = len(order)
			listed, relist = time.Now(), false
		}
		done := func(id string) bool {
			s, ok := shards[id]
			return id == "" || !ok || s.done // a parent no longer listed has expired
		}
		got, allCaughtUp, waiting := 0, true, false
		st.BehindMs = 0
		for _, s := range order {
			if s.done {
				continue
			}
			if !s.started {
				if !done(s.parent) || !done(s.adjacent) {
					allCaughtUp = false
					continue
				}
				s.started = true
			}
			if time.Now().Before(s.wait) {
				allCaughtUp, waiting = false, true
				continue
			}
			n, err := readOnce(ctx, api, o, s, &st, handle)
			if err != nil {
				if ctx.Err() != nil {
					return st, ctxEnd(ctx)
				}
				return st, err
			}
			if s.done {
				st.Finished++
				relist = true
			}
			got += n
			if !s.done && !s.caughtUp {
				allCaughtUp = false
			}
		}
		now := time.Now()
		if got > 0 {
			lastRecord = now
		}
		if o.Progress != nil && !now.Before(nextProgress) {
			o.Progress(st)
			nextProgress = now.Add(o.ProgressEvery)
		}
		if allCaughtUp && !relist && now.Sub(lastRecord) >= o.Settle {
			st.CaughtUp = true
			return st, nil
		}
		if got == 0 || waiting {
			t := time.NewTimer(o.Poll)
			select {
			case <-ctx.Done():
				t.Stop()
				return st, ctxEnd(ctx)
			case <-t.C:
			}
		}
	}
}

// ctxEnd: a deadline ends the read normally, a cancellation is an error.
func ctxEnd(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return ctx.Err()
}

func listShards(ctx context.Context, api KinesisAPI, stream string) ([]types.Shard, error) {
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	var out []types.Shard
	for range 10_000 {
		res, err := api.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("verify: ListShards %s: %w", stream, err)
		}
		out = append(out, res.Shards...)
		if aws.ToString(res.NextToken) == "" {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
	return nil, fmt.Errorf("verify: ListShards %s: too many pages", stream)
}

// readOnce makes one GetRecords call on s (getting an iterator first if
// needed) and hands its records over; it returns how many.
func readOnce(ctx context.Context, api KinesisAPI, o ReadOptions, s *shardState, st *ReadStats, handle func(*Record)) (int, error) {
	if s.iter == "" {
		in := &kinesis.GetShardIteratorInput{StreamName: aws.String(o.Stream), ShardId: aws.String(s.id)}
		switch {
		case s.after != "":
			in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
			in.StartingSequenceNumber = aws.String(s.after)
		case !o.From.IsZero():
			in.ShardIteratorType = types.ShardIteratorTypeAtTimestamp
			in.Timestamp = aws.Time(o.From)
		default:
			in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
		}
		out, err := api.GetShardIterator(ctx, in)
		if err != nil {
			return 0, s.failed("GetShardIterator", err, st)
		}
		if out.ShardIterator == nil {
			s.done = true // nothing to read
			return 0, nil
		}
		s.iter = *out.ShardIterator
	}
	st.Calls++
	out, err := api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(s.iter), Limit: aws.Int32(o.Limit)})
	if err != nil {
		return 0, s.failed("GetRecords", err, st)
	}
	s.backoff.Reset()
	now := time.Now()
	for i := range out.Records {
		kr := &out.Records[i]
		r := Record{Shard: s.id, Sequence: aws.ToString(kr.SequenceNumber), PartitionKey: aws.ToString(kr.PartitionKey),
			Arrival: aws.ToTime(kr.ApproximateArrivalTimestamp), Read: now, Data: kr.Data}
		handle(&r)
		st.Records++
		st.Bytes += uint64(len(kr.Data))
		s.after = r.Sequence
	}
	behind := aws.ToInt64(out.MillisBehindLatest)
	st.BehindMs = max(st.BehindMs, behind)
	s.caughtUp = len(out.Records) == 0 && behind == 0
	if out.NextShardIterator == nil {
		s.done, s.iter = true, ""
	} else {
		s.iter = *out.NextShardIterator
	}
	return len(out.Records), nil
}

// failed handles a failed call: throttling backs the shard off, an expired
// iterator is re-acquired, a vanished shard counts as done; anything else
// is returned.
func (s *shardState) failed(op string, err error, st *ReadStats) error {
	var ae smithy.APIError
	code := ""
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	switch code {
	case "ProvisionedThroughputExceededException", "LimitExceededException", "KMSThrottlingException":
		st.Throttle++
		s.wait = time.Now().Add(s.backoff.Next())
		return nil
	case "ExpiredIteratorException":
		s.iter = ""
		return nil
	case "ResourceNotFoundException":
		if op == "GetRecords" || op == "GetShardIterator" {
			s.done, s.iter = true, "" // expired or deleted shard
			return nil
		}
	}
	return fmt.Errorf("verify: %s %s: %w", op, s.id, err)
}
