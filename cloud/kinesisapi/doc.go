// Package kinesisapi serves the Amazon Kinesis Data Streams API (JSON 1.1
// protocol) over a shardstore.Store, so that aws-sdk-go-v2's kinesis
// client, the AWS CLI and other Kinesis tools work against the embedded
// store unchanged (BaseEndpoint / --endpoint-url pointed at it).
//
// # Protocol
//
// Requests are POST (any path) with X-Amz-Target:
// Kinesis_20131202.<Operation> and Content-Type
// application/x-amz-json-1.1 (1.0 is accepted too). CBOR
// (application/x-amz-cbor-1.1, the default of the Java SDK v1 and the
// KCL) is refused with 415 UnsupportedMediaTypeException and a message
// saying how to turn it off. Bodies are bounded (Options.MaxBodyBytes,
// default 8 MiB: a full PutRecords carries 5 MiB of data, 6.7 MiB once
// base64-encoded) and a larger one gets 413. Blobs are base64,
// timestamps epoch seconds (numbers, millisecond fractions).
//
// Operations: CreateStream, DeleteStream, DescribeStream (Limit,
// ExclusiveStartShardId), DescribeStreamSummary, ListStreams (Limit,
// ExclusiveStartStreamName, NextToken), ListShards (MaxResults,
// NextToken, ExclusiveStartShardId, ShardFilter of every type,
// StreamCreationTimestamp), PutRecord, PutRecords, GetShardIterator (all
// five types), GetRecords, SplitShard, MergeShards, UpdateShardCount
// (UNIFORM_SCALING), UpdateStreamMode, IncreaseStreamRetentionPeriod,
// DecreaseStreamRetentionPeriod. Every operation that names a stream
// takes StreamName, StreamARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME,
// Options.Region and Account, default us-east-1 and 000000000000) or both.
//
// Errors are JSON {"__type": T, "message": M} with the X-Amzn-ErrorType
// header, HTTP 400 for client errors — ResourceNotFoundException,
// ResourceInUseException, InvalidArgumentException,
// LimitExceededException, ProvisionedThroughputExceededException,
// ExpiredIteratorException, ExpiredNextTokenException, ValidationException
// (a member breaks its model constraint, with AWS's "1 validation error
// detected" message), SerializationException, UnknownOperationException
// and the signature errors — and 500 InternalFailure / 503
// ServiceUnavailable. PutRecords reports throttled entries per entry
// (ErrorCode ProvisionedThroughputExceededException, FailedRecordCount)
// while the others are stored.
//
// # Shard iterators and list tokens
//
// A shard iterator is base64(0x01 | 12-byte nonce | AES-256-GCM sealed
// ('I' | issue time in Unix ms | store Position)); a ListShards NextToken
// is the same with kind 'L' and the listing state (stream, incarnation,
// last shard listed, filter). They are opaque and cannot be forged or
// altered (InvalidArgumentException); an iterator older than 5 minutes
// (Options.IteratorTTL) gets ExpiredIteratorException, a token older than
// 5 minutes ExpiredNextTokenException. Every GetRecords returns a fresh
// iterator. The key is Options.IteratorKey, or random per process, in
// which case iterators die with the process and clients ask for new ones.
//
// # GetRecords
//
// Up to Limit (default and maximum 10,000) records and 10 MiB. On an
// open shard NextShardIterator is always set; MillisBehindLatest is how
// long ago the next unread record arrived (0 when caught up). When a read
// reaches the end of a closed shard — with its last records or with none
// left — NextShardIterator is absent and ChildShards lists the children
// with their parents and hash ranges (kinesalite signals the end one call
// later, with an empty read, and sends no ChildShards).
//
// # Authentication
//
// With Options.Credentials (access key id → secret), every request must
// carry a valid AWS Signature Version 4 Authorization header for service
// "kinesis" and Options.Region by one of them, with host and x-amz-target
// among the signed headers, dated within 15 minutes of the server's
// clock (MissingAuthenticationTokenException, UnrecognizedClientException,
// IncompleteSignatureException, InvalidSignatureException otherwise).
// Everything but the signature itself is checked before the body is read.
// Without credentials any signature, or none, is accepted, as kinesalite
// does.
//
// # Limits
//
// Server.Limited caps the calls in progress: beyond the cap a call gets
// LimitExceededException (HTTP 400) at once, which the AWS SDKs treat as
// throttling (back off, retry).
//
// # Observability
//
// Logs go to Options.Logger (failures at warn, every request at debug).
// With Options.Registerer the server exports
// tributary_kinesis_api_requests_total{op,code},
// tributary_kinesis_api_request_duration_seconds{op},
// tributary_kinesis_api_throttled_total{op} and
// tributary_kinesis_api_records_total{direction}.
//
// # Differences from Amazon Kinesis
//
// Streams are ACTIVE at once (create, reshard and delete are
// synchronous), unencrypted
// (EncryptionType NONE). Not served: enhanced fan-out (consumers,
// SubscribeToShard), tags, encryption, resource policies, enhanced
// monitoring changes. GetShardIterator and control operations are not
// rate-limited; SequenceNumberForOrdering is validated and otherwise
// ignored (records of one partition key are always in order).
//
// Capacity modes: CreateStream takes StreamModeDetails PROVISIONED (with
// a ShardCount) or ON_DEMAND (ShardCount optional, 4 shards by default),
// and UpdateStreamMode switches between them; an ON_DEMAND stream's write
// capacity follows AWS's on-demand rules (see shardstore) and refuses
// SplitShard, MergeShards and UpdateShardCount with
// InvalidArgumentException. Mode switches are not rate-limited (Kinesis
// allows two a day) and warm throughput is not served.
package kinesisapi
