package client

import (
	"fmt"

	"chat/internal/wire"
)

// The sentences of errors: a failed reply as one plain line.

// errorSentences maps every error code of docs/protocol.md to a plain
// sentence (docs/client.md has the same table).
var errorSentences = map[wire.Code]string{
	wire.CodeBadFrame:        "the server could not read the request",
	wire.CodeFrameTooLarge:   "the request is too large for the server",
	wire.CodeUnknownType:     "the server does not know this request",
	wire.CodeBadRequest:      "the server refused the request as malformed",
	wire.CodeNotLoggedIn:     "you are not logged in: /login NAME first",
	wire.CodeBadCredentials:  "wrong name or password",
	wire.CodeNameTaken:       "that name is taken",
	wire.CodeInvalidName:     fmt.Sprintf("names are 1-%d letters, digits and _ . -", wire.MaxNameRunes),
	wire.CodeInvalidPass:     fmt.Sprintf("passwords are %d-%d bytes", wire.MinPasswordBytes, wire.MaxPasswordBytes),
	wire.CodeNoSuchUser:      "there is no such user",
	wire.CodeNoSuchGroup:     "there is no such group",
	wire.CodeNotMember:       "you are not a member of that group",
	wire.CodeTooLong:         fmt.Sprintf("too long: messages are at most %d bytes", wire.MaxTextBytes),
	wire.CodeRateLimited:     "you are sending too fast; wait a moment",
	wire.CodeUnavailable:     "the server is temporarily unavailable; try again later",
	wire.CodeInternal:        "the server had an internal error",
	wire.CodeForbidden:       "you are not allowed to do that",
	wire.CodeNoSuchMessage:   "there is no such message",
	wire.CodeBlocked:         "that user has blocked you",
	wire.CodeTooManySessions: "you are logged in on too many devices; log out on one first",
}

// requestHints say more about a bad_request or a forbidden where the cause
// is clear, by code and request type.
var requestHints = map[wire.Code]map[string]string{
	wire.CodeBadRequest: {
		"chat":       "you cannot message yourself, and the text must not be empty",
		"add_friend": "you cannot add yourself",
		"create_group": fmt.Sprintf("group names are 1-%d characters, descriptions at most %d",
			wire.MaxGroupNameRunes, wire.MaxGroupDescRunes),
		"update_group": fmt.Sprintf("group names are 1-%d characters, descriptions at most %d",
			wire.MaxGroupNameRunes, wire.MaxGroupDescRunes),
		"edit": "the text must not be empty",
	},
	wire.CodeForbidden: {
		"join_group":     "the group is private, or you were removed from it: it takes an invitation",
		"edit":           "only its sender may edit a message, and not once it is deleted",
		"delete_message": "only its sender, or the group's creator or an admin, may delete a message",
		"invite":         "in a private group only its creator or an admin may invite",
		"kick_member":    "only the group's creator or an admin may remove a member, and never the creator",
		"set_role":       "only the group's creator may change roles",
		"update_group":   "only the group's creator or an admin may change it",
		"delete_group":   "only the group's creator may delete it",
	},
}

// fmtError formats a failed reply: "error msg: there is no such user (no_such_user)".
func fmtError(what, typ string, code wire.Code, text string) string {
	sentence, ok := errorSentences[code]
	if !ok {
		sentence = "the server said: " + clean(text)
	}
	if hint, ok := requestHints[code][typ]; ok {
		sentence += " (" + hint + ")"
	}
	return fmt.Sprintf("error %s: %s (%s)", what, sentence, code)
}
