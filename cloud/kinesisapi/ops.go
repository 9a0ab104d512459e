package kinesisapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"unicode"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// The operations, and the one request preamble they share: decode the
// body into the operation's request type, resolve the stream it names,
// then call the handler. The handlers live by resource: streams.go,
// shards.go, records.go, iterators.go.

// op serves one operation: the request body in, the response or the error
// out.
type op func(s *Server, ctx context.Context, body []byte) (any, *apiError)

var handlers = map[string]op{
	"CreateStream":                  handle((*Server).createStream),
	"DeleteStream":                  onStream((*Server).deleteStream),
	"DescribeStream":                onStream((*Server).describeStream),
	"DescribeStreamSummary":         onStream((*Server).describeStreamSummary),
	"ListStreams":                   handle((*Server).listStreams),
	"ListShards":                    handle((*Server).listShards),
	"PutRecord":                     onStream((*Server).putRecord),
	"PutRecords":                    onStream((*Server).putRecords),
	"GetShardIterator":              onStream((*Server).getShardIterator),
	"GetRecords":                    handle((*Server).getRecords),
	"SplitShard":                    onStream((*Server).splitShard),
	"MergeShards":                   onStream((*Server).mergeShards),
	"UpdateShardCount":              onStream((*Server).updateShardCount),
	"UpdateStreamMode":              onStream((*Server).updateStreamMode),
	"IncreaseStreamRetentionPeriod": onStream((*Server).increaseRetention),
	"DecreaseStreamRetentionPeriod": onStream((*Server).decreaseRetention),
}

// fastDecoder is a request type with its own decoder for the bodies SDKs
// send. It reports false for anything else, and encoding/json decodes the
// body instead (giving the same request, or the error).
type fastDecoder interface{ decodeFast(body []byte) bool }

// handle makes an op of fn: it decodes the body into a new Req (an empty
// body is {}) and calls fn with it.
func handle[Req any](fn func(s *Server, ctx context.Context, req *Req) (any, *apiError)) op {
	return func(s *Server, ctx context.Context, body []byte) (any, *apiError) {
		var req Req
		if fd, ok := any(&req).(fastDecoder); !ok || !fd.decodeFast(body) {
			if aerr := decode(body, &req); aerr != nil {
				return nil, aerr
			}
		}
		return fn(s, ctx, &req)
	}
}

// onStream is handle for the requests that name a stream (by StreamName,
// StreamARN or both): it also resolves the name, before any other check,
// and passes it to fn.
func onStream[Req interface{ ref() streamRef }](fn func(s *Server, ctx context.Context, stream string, req *Req) (any, *apiError)) op {
	return handle(func(s *Server, ctx context.Context, req *Req) (any, *apiError) {
		name, aerr := s.name((*req).ref())
		if aerr != nil {
			return nil, aerr
		}
		return fn(s, ctx, name, req)
	})
}

// decode unmarshals a request body (empty means {}).
func decode(body []byte, v any) *apiError {
	if len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return clientErr(typeSerialization, "the request body is not valid for this operation: %s", decodeMsg(err))
	}
	return nil
}

// decodeMsg says what is wrong with a request body in the API's terms:
// a member of the wrong JSON type is named as the client spells it, not
// by the Go type that holds the request.
func decodeMsg(err error) string {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err.Error()
	}
	var path []string
	for _, f := range strings.Split(te.Field, ".") {
		if f != "" && !unicode.IsLower(rune(f[0])) { // lower case: an embedded part such as streamRef
			path = append(path, f)
		}
	}
	if len(path) == 0 {
		return fmt.Sprintf("it must be %s (got %s)", jsonKind(te.Type), te.Value)
	}
	return fmt.Sprintf("member %s must be %s (got %s)", strings.Join(path, "."), jsonKind(te.Type), te.Value)
}

// jsonKind names the JSON value that decodes into t.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "a base64 string"
		}
		return "a list"
	}
	return "a JSON object"
}

// noContent is the answer of an operation that returns no members: {},
// or the store's error.
func (s *Server) noContent(err error, stream string) (any, *apiError) {
	if err != nil {
		return nil, s.storeErr(err, stream)
	}
	return struct{}{}, nil
}

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

// ref gives onStream the stream of every request type that embeds a
// streamRef.
func (r streamRef) ref() streamRef { return r }

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

// firstErr is the first failed check of several independent ones.
func firstErr(checks ...*apiError) *apiError {
	for _, aerr := range checks {
		if aerr != nil {
			return aerr
		}
	}
	return nil
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

// requiredName checks a member that must be present and a valid name (of
// a stream or a shard).
func requiredName(v *string, member string) *apiError {
	if v == nil {
		return required(member)
	}
	return checkName(*v, member)
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

// requiredRange checks a member that must be present and in [lo, hi].
func requiredRange(v *int64, member string, lo, hi int64) *apiError {
	if v == nil {
		return required(member)
	}
	return checkRange(v, member, lo, hi)
}

// checkHashKey checks the syntax of a hash key member (a decimal of at
// most 39 digits; its range is the caller's to check).
func checkHashKey(v, member string) *apiError {
	if !hashKeyRE.MatchString(v) {
		return validationErr(v, member, `must satisfy regular expression pattern: 0|([1-9]\d{0,38})`)
	}
	return nil
}

// checkSeq checks an optional sequence number member.
func checkSeq(v *string, member string) *apiError {
	if v != nil && !seqRE.MatchString(*v) {
		return validationErr(*v, member, `must satisfy regular expression pattern: 0|([1-9]\d{0,128})`)
	}
	return nil
}

// orDefault is *v, or def when the member is absent.
func orDefault(v *int64, def int) int {
	if v == nil {
		return def
	}
	return int(*v)
}

// startAfter is the shard index a listing starts after: that of
// ExclusiveStartShardId, or -1 for none (or for an id that names no
// shard index, which lists them all).
func startAfter(id *string) (int64, *apiError) {
	if id == nil {
		return -1, nil
	}
	if aerr := checkName(*id, "exclusiveStartShardId"); aerr != nil {
		return 0, aerr
	}
	if idx, ok := shardstore.ParseShardID(*id); ok {
		return int64(idx), nil
	}
	return -1, nil
}

// pageShards lists the shards above index after that keep accepts (nil
// keeps all), at most limit of them, and says whether more follow.
func pageShards(shards []shardstore.ShardInfo, after int64, limit int, keep func(shardstore.ShardInfo) bool) ([]shardJSON, bool) {
	out := []shardJSON{}
	for _, sh := range shards {
		idx, _ := shardstore.ParseShardID(sh.ShardID)
		if int64(idx) <= after || keep != nil && !keep(sh) {
			continue
		}
		if len(out) == limit {
			return out, true
		}
		out = append(out, toShardJSON(sh))
	}
	return out, false
}

func (s *Server) describe(name string) (shardstore.StreamInfo, *apiError) {
	in, err := s.store.DescribeStream(name)
	if err != nil {
		return in, s.storeErr(err, name)
	}
	return in, nil
}
