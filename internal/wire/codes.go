package wire

// Code is a protocol error code: the "code" field of a failed reply.
type Code string

// The error codes of docs/protocol.md, in the order of its list.
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
	// Version 2.
	CodeForbidden       Code = "forbidden"
	CodeNoSuchMessage   Code = "no_such_message"
	CodeBlocked         Code = "blocked"
	CodeTooManySessions Code = "too_many_sessions"
)

// Codes lists every code, for tests that check a table covers them all.
var Codes = []Code{
	CodeBadFrame, CodeFrameTooLarge, CodeUnknownType, CodeBadRequest,
	CodeNotLoggedIn, CodeBadCredentials, CodeNameTaken, CodeInvalidName,
	CodeInvalidPass, CodeNoSuchUser, CodeNoSuchGroup, CodeNotMember,
	CodeTooLong, CodeRateLimited, CodeUnavailable, CodeInternal,
	CodeForbidden, CodeNoSuchMessage, CodeBlocked, CodeTooManySessions,
}
