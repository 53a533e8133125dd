package main

import (
	"errors"
	"fmt"
	"time"

	"chat/internal/wire"
)

// ProtoError is a client-visible failure: it becomes an ok:false reply and is
// never logged as a server fault.
type ProtoError struct {
	Code wire.Code
	Msg  string
	// RetryAfter, when positive, is how long the client should wait before
	// trying again: sent as "retry_after" in milliseconds (rate_limited).
	RetryAfter time.Duration
}

func (e *ProtoError) Error() string { return string(e.Code) + ": " + e.Msg }

func protoErr(code wire.Code, format string, args ...any) *ProtoError {
	return &ProtoError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// rateLimited is the rate_limited error of a request that may be retried
// after wait.
func rateLimited(wait time.Duration, format string, args ...any) *ProtoError {
	e := protoErr(wire.CodeRateLimited, format, args...)
	e.RetryAfter = wait
	return e
}

// Store sentinels. Handlers turn them into protocol errors.
var (
	ErrNameTaken   = errors.New("name taken")
	ErrNoSuchUser  = errors.New("no such user")
	ErrNoSuchGroup = errors.New("no such group")
	ErrNotMember   = errors.New("not a member")
	// ErrNoSuchMessage: no message with that id, or not in a conversation
	// of the caller's (the two are not told apart).
	ErrNoSuchMessage = errors.New("no such message")
	// ErrTooManySessions: the user holds -max-devices sessions already.
	ErrTooManySessions = errors.New("too many sessions")
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
		return protoErr(wire.CodeNameTaken, "that name is taken"), false
	case errors.Is(err, ErrNoSuchUser):
		return protoErr(wire.CodeNoSuchUser, "no such user"), false
	case errors.Is(err, ErrNoSuchGroup):
		return protoErr(wire.CodeNoSuchGroup, "no such group"), false
	case errors.Is(err, ErrNotMember):
		return protoErr(wire.CodeNotMember, "not a member of that group"), false
	case errors.Is(err, ErrTooManySessions):
		return protoErr(wire.CodeTooManySessions, "logged in on too many devices; log out on one first"), false
	case errors.Is(err, ErrNoSuchMessage):
		return protoErr(wire.CodeNoSuchMessage, "no such message"), false
	case errors.Is(err, ErrUnavailable), errors.Is(err, errClosed):
		return protoErr(wire.CodeUnavailable, "the service is temporarily unavailable, retry later"), true
	default:
		return protoErr(wire.CodeInternal, "internal error"), true
	}
}
