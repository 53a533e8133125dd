package wire

import "unicode"

// Limits of docs/protocol.md that are not flags.
const (
	MaxNameRunes      = 32
	MinPasswordBytes  = 6
	MaxPasswordBytes  = 72 // bcrypt ignores what lies beyond
	MaxTextBytes      = 4096
	MaxCIDBytes       = 64
	MaxDeviceBytes    = 64
	MaxGroupNameRunes = 64
	MaxGroupDescRunes = 256
	DefaultHistory    = 50
	MaxHistory        = 200
	DefaultOnline     = 100
	MaxOnline         = 1000
	MaxAckIDs         = 10000
	DefaultFindGroups = 20
	MaxFindGroups     = 100
)

// ValidName reports whether s may be a user name: 1-32 code points, each a
// letter, mark or digit of any script, or one of "_.-".
func ValidName(s string) bool {
	n := 0
	for _, r := range s {
		n++
		if n > MaxNameRunes {
			return false
		}
		switch {
		case r == '_' || r == '.' || r == '-':
		case unicode.IsLetter(r), unicode.IsMark(r), unicode.IsDigit(r):
		default:
			return false
		}
	}
	return n > 0
}
