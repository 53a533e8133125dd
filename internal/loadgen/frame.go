package loadgen

import (
	"strconv"

	"chat/internal/wire"
)

// frame is the part of a server frame the load generator reads. The byte
// slices point into the line they were scanned from.
type frame struct {
	typ, code, text []byte
	rid             int64
	hasRid          bool
	ok, backlog     bool
	msgID, from     int64
	userID, groupID int64
}

// scanFrame reads the fields of a frame from one JSON line without
// allocating (a frame is read for every message the run sends and every
// one it receives). Strings are returned raw (escapes left in): the load
// generator only compares type and code names and parses texts it wrote.
func scanFrame(line []byte, f *frame) error {
	*f = frame{}
	s := wire.NewScanner(line)
	return s.Object(func(key []byte) error { return f.field(&s, key) })
}

// field reads the top-level member key; the switch on string(key) does not
// allocate, and neither do the closures, which do not escape.
func (f *frame) field(s *wire.Scanner, key []byte) (err error) {
	switch string(key) {
	case "type":
		f.typ, err = s.Str()
	case "code":
		f.code, err = s.Str()
	case "rid":
		f.rid, f.hasRid, err = s.Int()
	case "ok":
		f.ok, err = s.Bool()
	case "backlog":
		f.backlog, err = s.Bool()
	case "message":
		if s.Peek() != '{' {
			return s.Skip()
		}
		return s.Object(func(key []byte) error { return f.messageField(s, key) })
	case "user":
		return scanID(s, &f.userID)
	case "group": // an object in replies, an id in pushes
		if s.Peek() == '{' {
			return scanID(s, &f.groupID)
		}
		f.groupID, _, err = s.Int()
	default:
		err = s.Skip()
	}
	return err
}

func (f *frame) messageField(s *wire.Scanner, key []byte) (err error) {
	switch string(key) {
	case "id":
		f.msgID, _, err = s.Int()
	case "from":
		f.from, _, err = s.Int()
	case "group":
		f.groupID, _, err = s.Int()
	case "text":
		f.text, err = s.Str()
	default:
		err = s.Skip()
	}
	return err
}

// scanID reads the "id" member of an object into id; a value that is not
// an object is skipped.
func scanID(s *wire.Scanner, id *int64) error {
	if s.Peek() != '{' {
		return s.Skip()
	}
	return s.Object(func(key []byte) (err error) {
		if string(key) != "id" {
			return s.Skip()
		}
		*id, _, err = s.Int()
		return err
	})
}

// text is what the load generator writes into a message's text:
// "lg RUN SENDER SEQ NANOS" then padding. NANOS is the send time on the
// load generator's own monotonic clock, so latency needs no clock sync.
type text struct {
	run    []byte
	sender int
	seq    int
	sentNs int64
}

// appendText appends a text of size bytes (at least minTextSize).
func appendText(b []byte, run string, sender, seq int, sentNs int64, size int) []byte {
	start := len(b)
	b = append(b, "lg "...)
	b = append(b, run...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(sender), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, sentNs, 10)
	b = append(b, ' ')
	for len(b)-start < size {
		b = append(b, 'x')
	}
	return b
}

// parseText reads a text written by appendText; ok is false for any other
// text (a message from another tool or an earlier run's user).
func parseText(b []byte) (t text, ok bool) {
	if len(b) < 3 || string(b[:3]) != "lg " {
		return t, false
	}
	b = b[3:]
	var fields [4][]byte
	for i := range fields {
		end := 0
		for end < len(b) && b[end] != ' ' {
			end++
		}
		if end == 0 {
			return t, false
		}
		fields[i] = b[:end]
		if end < len(b) {
			end++
		}
		b = b[end:]
	}
	t.run = fields[0]
	var nums [3]int64
	for i, f := range fields[1:] {
		var v int64
		for _, c := range f {
			if c < '0' || c > '9' {
				return t, false
			}
			v = v*10 + int64(c-'0')
		}
		nums[i] = v
	}
	t.sender, t.seq, t.sentNs = int(nums[0]), int(nums[1]), nums[2]
	return t, true
}
