package main

import (
	"errors"
	"math"
	"math/bits"
	"time"
)

// The load generator's accounting: a latency histogram, per-sender
// sequence tracking (lost, duplicated, out of order) and a frame scanner
// that reads the few fields it needs without encoding/json.

// latencyHist is a log-linear histogram of durations: exact below 128 ns,
// then 64 buckets per power of two, so any quantile it reports is within
// 1/64 (1.6%) of the true value. Recording is one array increment; each
// goroutine keeps its own and they are merged at the end.
type latencyHist struct {
	counts   [histBuckets]uint64
	n        uint64
	min, max time.Duration
	sum      time.Duration
}

const (
	histSubBits = 7 // values below 1<<histSubBits are exact
	histSub     = 1 << (histSubBits - 1)
	histShifts  = 63 - histSubBits + 1
	histBuckets = histShifts*histSub + 2*histSub
)

func histIndex(v uint64) int {
	shift := bits.Len64(v) - histSubBits
	if shift <= 0 {
		return int(v)
	}
	return shift*histSub + int(v>>uint(shift))
}

// histUpper is the largest value that falls in bucket i.
func histUpper(i int) uint64 {
	if i < 2*histSub {
		return uint64(i)
	}
	shift := i/histSub - 1
	mant := uint64(i - shift*histSub)
	return (mant+1)<<uint(shift) - 1
}

func (h *latencyHist) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[histIndex(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

func (h *latencyHist) merge(o *latencyHist) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the value at or below which a fraction q of the
// recorded values fall (the nearest-rank definition), as the upper bound of
// its bucket, never above the largest value recorded.
func (h *latencyHist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := time.Duration(histUpper(i))
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return v
		}
	}
	return h.max
}

// latencySummary is what the report prints of a histogram, in milliseconds.
type latencySummary struct {
	N    uint64  `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99.9"`
	Max  float64 `json:"max"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (h *latencyHist) summary() latencySummary {
	s := latencySummary{N: h.n, P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)),
		P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)), Max: ms(h.max)}
	if h.n > 0 {
		s.Mean = ms(h.sum / time.Duration(h.n))
	}
	return s
}

// bitset holds sequence numbers 1, 2, 3 ...; it grows as needed.
type bitset []uint64

// add sets i and says whether it was already set.
func (b *bitset) add(i int) (had bool) {
	w := i >> 6
	for w >= len(*b) {
		*b = append(*b, 0)
	}
	m := uint64(1) << uint(i&63)
	had = (*b)[w]&m != 0
	(*b)[w] |= m
	return had
}

func (b bitset) has(i int) bool {
	w := i >> 6
	return w < len(b) && b[w]&(uint64(1)<<uint(i&63)) != 0
}

func (b bitset) count() int {
	n := 0
	for _, w := range b {
		n += bits.OnesCount64(w)
	}
	return n
}

// missing counts the members of want that are not in b.
func (b bitset) missing(want bitset) int {
	n := 0
	for i, w := range want {
		if i < len(b) {
			w &^= b[i]
		}
		n += bits.OnesCount64(w)
	}
	return n
}

// seqTracker follows what one receiver got from one sender. Live messages
// from one sender must arrive in the order sent; a backlog push (a message
// pending from before this login) may not, and is not counted as out of order.
type seqTracker struct {
	seen bitset
	max  int
	n    int // distinct sequence numbers seen
	dup  int
	ooo  int
}

func (t *seqTracker) see(seq int, backlog bool) (first bool) {
	if t.seen.add(seq) {
		t.dup++
		return false
	}
	t.n++
	if seq < t.max && !backlog {
		t.ooo++
	}
	if seq > t.max {
		t.max = seq
	}
	return true
}

// lgFrame is the part of a server frame the load generator reads. The
// byte slices point into the line they were scanned from.
type lgFrame struct {
	typ, code, text []byte
	rid             int64
	hasRid          bool
	ok, backlog     bool
	msgID, from     int64
	userID, groupID int64
}

var errScan = errors.New("malformed frame")

// scanFrame reads the fields of an lgFrame from one JSON line without
// allocating. Strings are returned raw (escapes left in): the load
// generator only compares type and code names and parses texts it wrote.
func scanFrame(line []byte, f *lgFrame) error {
	*f = lgFrame{}
	s := jscan{b: line}
	return s.object(f, inTop)
}

type jsonPlace int

const (
	inTop jsonPlace = iota
	inMessage
	inUser
	inGroup
	inOther
)

type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jscan) expect(c byte) error {
	if s.peek() != c {
		return errScan
	}
	s.i++
	return nil
}

func (s *jscan) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			v := s.b[start:s.i]
			s.i++
			return v, nil
		default:
			s.i++
		}
	}
	return nil, errScan
}

// int reads an integer; any other number or value is skipped and reported
// as not an integer.
func (s *jscan) int() (int64, bool, error) {
	s.ws()
	start, neg := s.i, false
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	var v int64
	digits := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + int64(s.b[s.i]-'0')
		s.i++
		digits++
	}
	if digits > 0 && s.i < len(s.b) && s.b[s.i] != '.' && s.b[s.i] != 'e' && s.b[s.i] != 'E' {
		if neg {
			v = -v
		}
		return v, true, nil
	}
	s.i = start
	return 0, false, s.skip()
}

func (s *jscan) boolean() (bool, error) {
	s.ws()
	switch {
	case len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "true":
		s.i += 4
		return true, nil
	case len(s.b)-s.i >= 5 && string(s.b[s.i:s.i+5]) == "false":
		s.i += 5
		return false, nil
	}
	return false, s.skip()
}

// skip passes over one value of any kind.
func (s *jscan) skip() error {
	switch s.peek() {
	case '"':
		_, err := s.str()
		return err
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if _, err := s.str(); err != nil {
					return err
				}
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
		return errScan
	case 0:
		return errScan
	default: // number, true, false, null
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				if s.i == start {
					return errScan
				}
				return nil
			}
			s.i++
		}
		return nil
	}
}

func (s *jscan) object(f *lgFrame, in jsonPlace) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		key, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := s.field(f, in, string(key)); err != nil {
			return err
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return errScan
		}
	}
}

// field reads the value of key in place in; the switch on string(key)
// does not allocate.
func (s *jscan) field(f *lgFrame, in jsonPlace, key string) error {
	var err error
	switch in {
	case inTop:
		switch key {
		case "type":
			f.typ, err = s.str()
		case "code":
			f.code, err = s.str()
		case "rid":
			f.rid, f.hasRid, err = s.int()
		case "ok":
			f.ok, err = s.boolean()
		case "backlog":
			f.backlog, err = s.boolean()
		case "message":
			return s.nested(f, inMessage)
		case "user":
			return s.nested(f, inUser)
		case "group":
			if s.peek() == '{' {
				return s.nested(f, inGroup)
			}
			f.groupID, _, err = s.int()
		default:
			err = s.skip()
		}
	case inMessage:
		switch key {
		case "id":
			f.msgID, _, err = s.int()
		case "from":
			f.from, _, err = s.int()
		case "group":
			f.groupID, _, err = s.int()
		case "text":
			f.text, err = s.str()
		default:
			err = s.skip()
		}
	case inUser, inGroup:
		if key == "id" {
			var id int64
			id, _, err = s.int()
			if in == inUser {
				f.userID = id
			} else {
				f.groupID = id
			}
		} else {
			err = s.skip()
		}
	default:
		err = s.skip()
	}
	return err
}

func (s *jscan) nested(f *lgFrame, in jsonPlace) error {
	if s.peek() != '{' {
		return s.skip()
	}
	return s.object(f, in)
}

// lgText is what the load generator writes into a message's text:
// "lg RUN SENDER SEQ NANOS" then padding. NANOS is the send time on the
// load generator's own monotonic clock, so latency needs no clock sync.
type lgText struct {
	run    []byte
	sender int
	seq    int
	sentNs int64
}

func appendLGText(b []byte, run string, sender, seq int, sentNs int64, size int) []byte {
	start := len(b)
	b = append(b, "lg "...)
	b = append(b, run...)
	b = append(b, ' ')
	b = appendInt(b, int64(sender))
	b = append(b, ' ')
	b = appendInt(b, int64(seq))
	b = append(b, ' ')
	b = appendInt(b, sentNs)
	b = append(b, ' ')
	for len(b)-start < size {
		b = append(b, 'x')
	}
	return b
}

func appendInt(b []byte, v int64) []byte {
	if v < 0 {
		b = append(b, '-')
		v = -v
	}
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// parseLGText reads a text written by appendLGText; ok is false for any
// other text (a message from another tool or an earlier run's user).
func parseLGText(b []byte) (t lgText, ok bool) {
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
