package wire

import (
	"bytes"
	"errors"
	"math"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. s must be valid UTF-8 (every
// string the server holds came through a validated frame or the store).
// HTML characters are left as they are: the wire is not a web page.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// ErrSyntax is returned by a Scanner for input that is not the JSON it
// expected.
var ErrSyntax = errors.New("wire: malformed JSON")

// Scanner reads one JSON text field by field without encoding/json and
// without allocating: strings come back raw (between the quotes, escapes
// left in) as slices of the input. It checks bounds and structure as it
// goes, so malformed input is an error, never a panic, but it does not
// validate everything encoding/json would (the server runs json.Valid
// first; the load generator trusts the server it measures).
type Scanner struct {
	b []byte
	i int
}

// NewScanner returns a Scanner over b.
func NewScanner(b []byte) Scanner { return Scanner{b: b} }

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

// Peek returns the next byte that is not white space, or 0 at the end.
func (s *Scanner) Peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *Scanner) expect(c byte) error {
	if s.Peek() != c {
		return ErrSyntax
	}
	s.i++
	return nil
}

// Str reads a string and returns its raw contents.
func (s *Scanner) Str() ([]byte, error) {
	if s.Peek() != '"' {
		return nil, ErrSyntax
	}
	start := s.i + 1
	end := stringEnd(s.b, start)
	if end < 0 {
		return nil, ErrSyntax
	}
	s.i = end + 1
	return s.b[start:end], nil
}

// stringEnd returns the index of the quote that closes the string whose
// contents start at b[i], or -1. It jumps from quote to quote: a quote
// preceded by an odd number of backslashes is escaped.
func stringEnd(b []byte, i int) int {
	for {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		q += i
		n := 0
		for j := q - 1; j >= i && b[j] == '\\'; j-- {
			n++
		}
		if n%2 == 0 {
			return q
		}
		i = q + 1
	}
}

// Int reads an integer. Any other value is skipped and reported as not an
// integer (ok false, no error).
func (s *Scanner) Int() (v int64, ok bool, err error) {
	s.ws()
	start, neg := s.i, false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	digits, overflow := 0, false
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := int64(s.b[s.i] - '0')
		if v > (math.MaxInt64-d)/10 {
			overflow = true
		}
		v = v*10 + d
		s.i++
		digits++
	}
	if digits > 0 && !overflow && (s.i == len(s.b) || !isNumberByte(s.b[s.i])) {
		if neg {
			v = -v
		}
		return v, true, nil
	}
	s.i = start
	return 0, false, s.Skip()
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// Bool reads true or false; any other value is skipped and reads as false.
func (s *Scanner) Bool() (bool, error) {
	s.ws()
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, nil
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, nil
	}
	return false, s.Skip()
}

// Raw reads one value of any kind and returns its bytes as they are.
func (s *Scanner) Raw() ([]byte, error) {
	s.ws()
	start := s.i
	if err := s.Skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i:s.i], nil
}

// Skip passes over one value of any kind.
func (s *Scanner) Skip() error {
	switch s.Peek() {
	case '"':
		_, err := s.Str()
		return err
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				end := stringEnd(s.b, s.i+1)
				if end < 0 {
					return ErrSyntax
				}
				s.i = end + 1
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return nil
				}
			}
			s.i++
		}
		return ErrSyntax
	case 0:
		return ErrSyntax
	default: // a number, true, false or null
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				if s.i == start {
					return ErrSyntax
				}
				return nil
			}
			s.i++
		}
		return nil
	}
}

// Object reads an object, calling field for each key (raw, escapes left
// in) with the scanner placed at its value; field must read or skip the
// value. A repeated key is passed each time.
func (s *Scanner) Object(field func(key []byte) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.Peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.Str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return ErrSyntax
		}
	}
}
