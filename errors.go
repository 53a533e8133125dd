package main

import (
	"errors"
	"fmt"
)

// Code is a protocol error code, sent as the "code" field of a failed reply.
type Code string

// The error codes of PROTOCOL.md, in the order of its list.
const (
	CodeBadFrame       Code = "bad_frame"
	CodeFrameTooLarge  Code = "frame_too_large"
	CodeUnknownType    Code = "unknown_type"
	CodeBadRequest     Code = "bad_request"
	CodeNotLoggedIn    Code = "not_logged_in"
	CodeBadCredentials Code = "bad_credentials"
	CodeNameTaken      Code = "name_taken"
	CodeInvalidName    Code = "invalid_name"
	CodeInvalidPass    Code = "invalid_password"
	CodeNoSuchUser     Code = "no_such_user"
	CodeNoSuchGroup    Code = "no_such_group"
	CodeNotMember      Code = "not_member"
	CodeTooLong        Code = "too_long"
	CodeRateLimited    Code = "rate_limited"
	CodeUnavailable    Code = "unavailable"
	CodeInternal       Code = "internal"
)

// ProtoError is a client-visible failure: it becomes an ok:false reply and is
// never logged as a server fault.
type ProtoError struct {
	Code Code
	Msg  string
}

func (e *ProtoError) Error() string { return string(e.Code) + ": " + e.Msg }

func protoErr(code Code, format string, args ...any) *ProtoError {
	return &ProtoError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Store sentinels. Handlers turn them into protocol errors.
var (
	ErrNameTaken   = errors.New("name taken")
	ErrNoSuchUser  = errors.New("no such user")
	ErrNoSuchGroup = errors.New("no such group")
	ErrNotMember   = errors.New("not a member")
	// ErrUnavailable wraps failures of a backing store that a retry may cure.
	ErrUnavailable = errors.New("store unavailable")
	// errClosed is returned for work submitted while the server shuts down.
	errClosed = errors.New("server closing")
)

// asProtoError maps any error from a handler to the reply the client gets.
// The second result reports whether the error is a server fault worth logging.
func asProtoError(err error) (*ProtoError, bool) {
	var pe *ProtoError
	switch {
	case errors.As(err, &pe):
		return pe, false
	case errors.Is(err, ErrNameTaken):
		return protoErr(CodeNameTaken, "that name is taken"), false
	case errors.Is(err, ErrNoSuchUser):
		return protoErr(CodeNoSuchUser, "no such user"), false
	case errors.Is(err, ErrNoSuchGroup):
		return protoErr(CodeNoSuchGroup, "no such group"), false
	case errors.Is(err, ErrNotMember):
		return protoErr(CodeNotMember, "not a member of that group"), false
	case errors.Is(err, ErrUnavailable), errors.Is(err, errClosed):
		return protoErr(CodeUnavailable, "the service is temporarily unavailable, retry later"), true
	default:
		return protoErr(CodeInternal, "internal error"), true
	}
}
