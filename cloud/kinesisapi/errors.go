package kinesisapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// Error types of the Kinesis Data Streams API (the JSON "__type").
const (
	typeResourceNotFound     = "ResourceNotFoundException"
	typeResourceInUse        = "ResourceInUseException"
	typeInvalidArgument      = "InvalidArgumentException"
	typeLimitExceeded        = "LimitExceededException"
	typeThroughputExceeded   = "ProvisionedThroughputExceededException"
	typeExpiredIterator      = "ExpiredIteratorException"
	typeExpiredNextToken     = "ExpiredNextTokenException"
	typeValidation           = "ValidationException"
	typeSerialization        = "SerializationException"
	typeUnknownOperation     = "UnknownOperationException"
	typeMissingAuth          = "MissingAuthenticationTokenException"
	typeIncompleteSignature  = "IncompleteSignatureException"
	typeInvalidSignature     = "InvalidSignatureException"
	typeUnrecognizedClient   = "UnrecognizedClientException"
	typeInternalFailure      = "InternalFailure"
	typeServiceUnavailable   = "ServiceUnavailable"
	typeUnsupportedMediaType = "UnsupportedMediaTypeException"
	typeRequestTooLarge      = "RequestEntityTooLargeException"
)

// apiError is an error answer: HTTP status, __type and message.
type apiError struct {
	Status  int
	Type    string
	Message string
}

func (e *apiError) Error() string { return e.Type + ": " + e.Message }

func clientErr(typ, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Type: typ, Message: fmt.Sprintf(format, args...)}
}

// validationErr is AWS's message for a member that breaks its model
// constraint.
func validationErr(value any, member, constraint string) *apiError {
	return clientErr(typeValidation, "1 validation error detected: Value '%v' at '%s' failed to satisfy constraint: Member %s", value, member, constraint)
}

// storeErr maps a store error to the API's error.
func (s *Server) storeErr(err error, stream string) *apiError {
	var se *shardstore.Error
	msg := err.Error()
	if errors.As(err, &se) {
		msg = se.Msg
	}
	switch {
	case errors.Is(err, shardstore.ErrStreamNotFound):
		return clientErr(typeResourceNotFound, "Stream %s under account %s not found.", stream, s.opts.Account)
	case errors.Is(err, shardstore.ErrShardNotFound):
		return clientErr(typeResourceNotFound, "%s (account %s).", upperFirst(msg), s.opts.Account)
	case errors.Is(err, shardstore.ErrStreamExists):
		return clientErr(typeResourceInUse, "Stream %s under account %s already exists.", stream, s.opts.Account)
	case errors.Is(err, shardstore.ErrInvalidArgument):
		return clientErr(typeInvalidArgument, "%s", upperFirst(msg))
	case errors.Is(err, shardstore.ErrThrottled):
		return clientErr(typeThroughputExceeded, "%s under account %s.", upperFirst(msg), s.opts.Account)
	case errors.Is(err, shardstore.ErrLimitExceeded):
		return clientErr(typeLimitExceeded, "%s", upperFirst(msg))
	case errors.Is(err, shardstore.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Type: typeServiceUnavailable, Message: "The service is shutting down."}
	}
	s.log.Error("kinesisapi: internal failure", "err", err)
	return &apiError{Status: http.StatusInternalServerError, Type: typeInternalFailure, Message: "The request processing has failed because of an unknown error, exception or failure."}
}

func upperFirst(s string) string {
	if s != "" && s[0] >= 'a' && s[0] <= 'z' {
		return string(s[0]-'a'+'A') + s[1:]
	}
	return s
}
