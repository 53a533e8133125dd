package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"chat/internal/wire"
)

// scriptConn is a net.Conn whose reads return the chunks of a script, one
// chunk (or as much of it as fits) per Read, then io.EOF.
type scriptConn struct {
	net.Conn  // nil: only Read and SetReadDeadline are used
	chunks    [][]byte
	onRead    func(p []byte)
	deadlines int // SetReadDeadline calls
}

func (s *scriptConn) Read(p []byte) (int, error) {
	if s.onRead != nil {
		s.onRead(p)
	}
	if len(s.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.chunks[0])
	if s.chunks[0] = s.chunks[0][n:]; len(s.chunks[0]) == 0 {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

func (s *scriptConn) SetReadDeadline(time.Time) error {
	s.deadlines++
	return nil
}

func lineReaderFor(nc net.Conn, maxFrame int) *lineReader {
	srv := &Server{cfg: Config{MaxFrame: maxFrame, IdleTimeout: time.Minute}}
	return &lineReader{c: &conn{srv: srv, nc: nc}, next: true}
}

// readLines returns the lines lr yields until an error, and the error.
func readLines(lr *lineReader) ([]string, error) {
	var lines []string
	for {
		line, ok, err := lr.line()
		if ok {
			lines = append(lines, string(line))
		}
		if err != nil {
			return lines, err
		}
		if !ok {
			lr.err = lr.fill()
		}
	}
}

// wantLines is what a reader of input should yield: every line, until one
// is longer than maxFrame ('\r' before '\n' not counted), and a last one
// without '\n' at EOF if it fits. One byte more than fits (a '\r' to come?)
// is dropped at EOF; more is frame_too_large.
func wantLines(input string, maxFrame int) (lines []string, tooLarge bool) {
	parts := strings.Split(input, "\n")
	for _, p := range parts[:len(parts)-1] {
		if len(strings.TrimSuffix(p, "\r")) > maxFrame {
			return lines, true
		}
		lines = append(lines, p)
	}
	switch last := parts[len(parts)-1]; {
	case len(last) > maxFrame+1:
		return lines, true
	case last != "" && len(last) <= maxFrame:
		lines = append(lines, last)
	}
	return lines, false
}

func TestLineReaderSplitsAsLinesAtAnyChunking(t *testing.T) {
	// Line lengths around the idle buffer, the borrowed buffer and the limit.
	const maxFrame = 3*readBufSize + 100
	lens := []int{0, 1, 2, idleReadSize - 2, idleReadSize - 1, idleReadSize, idleReadSize + 1,
		readBufSize - 1, readBufSize, readBufSize + 1, 2*readBufSize + 3, maxFrame - 1, maxFrame}
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 1))
		var in strings.Builder
		for range 1 + rng.IntN(40) {
			n := lens[rng.IntN(len(lens))]
			if rng.IntN(4) == 0 {
				n = rng.IntN(300)
			}
			line := strings.Repeat(string(rune('a'+rng.IntN(26))), n)
			if rng.IntN(3) == 0 && n > 0 {
				line = line[:n-1] + "\r"
			}
			in.WriteString(line + "\n")
		}
		switch rng.IntN(4) {
		case 0: // a last frame without '\n'
			n := []int{1 + rng.IntN(200), readBufSize + 5, maxFrame, maxFrame + 1, maxFrame + 2}[rng.IntN(5)]
			in.WriteString(strings.Repeat("z", n))
		case 1: // a frame one byte too long
			in.WriteString(strings.Repeat("y", maxFrame+1) + "\n")
		}
		input := in.String()
		var chunks [][]byte
		for rest := []byte(input); len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN([]int{3, idleReadSize + 5, 3 * readBufSize}[rng.IntN(3)]))
			chunks = append(chunks, rest[:n])
			rest = rest[n:]
		}

		lr := lineReaderFor(&scriptConn{chunks: chunks}, maxFrame)
		got, err := readLines(lr)
		want, tooLarge := wantLines(input, maxFrame)
		var perr *ProtoError
		switch {
		case tooLarge && (!errors.As(err, &perr) || perr.Code != wire.CodeFrameTooLarge):
			t.Fatalf("seed %d: want frame_too_large, got %v", seed, err)
		case !tooLarge && err != io.EOF:
			t.Fatalf("seed %d: want io.EOF, got %v", seed, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d: got %d lines, want %d", seed, len(got), len(want))
		}
		lr.release()
	}
}

func TestLineReaderWaitsWithoutABorrowedBuffer(t *testing.T) {
	ping := []byte(`{"type":"ping"}` + "\n")
	long := append(bytes.Repeat([]byte("x"), 3*idleReadSize), '\n')
	sc := &scriptConn{chunks: [][]byte{
		ping,
		long[:idleReadSize+10], // fills the idle buffer: more is likely waiting
		long[idleReadSize+10:],
		ping,
		long[:2*idleReadSize], // a partial frame too long for the idle buffer
		long[2*idleReadSize:],
		bytes.Repeat(ping, 1000), // 16 KB in one write
		ping,
	}}
	lr := lineReaderFor(sc, 1<<20)
	type read struct{ idle, borrowed, empty bool }
	var reads []read
	sc.onRead = func(p []byte) {
		idleBuf := &lr.c.idleBuf
		reads = append(reads, read{
			idle:     &p[len(p)-1] == &idleBuf[len(idleBuf)-1],
			borrowed: lr.big != nil,
			empty:    lr.w == 0,
		})
	}
	lines, err := readLines(lr)
	if err != io.EOF || len(lines) != 1005 {
		t.Fatalf("got %d lines, %v", len(lines), err)
	}
	var got strings.Builder
	for i, r := range reads {
		if r.idle == r.borrowed {
			t.Fatalf("read %d: into the idle buffer %v, with a buffer borrowed %v", i, r.idle, r.borrowed)
		}
		if r.idle {
			got.WriteByte('i')
		} else {
			got.WriteByte('b')
		}
	}
	// i: a read into the idle buffer, b: into a borrowed one. A read that
	// fills the idle buffer is followed by borrowed ones, as is a partial
	// frame too long for it, until a read leaves nothing pending.
	pings := (1000*len(ping) - idleReadSize + readBufSize - 1) / readBufSize
	want := "i" + "ibb" + // ping; long: its start fills the idle buffer, the rest (two chunks) is borrowed
		"i" + "ibb" + // ping; long again, its second chunk waited for with a borrowed buffer
		"i" + strings.Repeat("b", pings) + // 1000 pings: the first read fills the idle buffer
		"i" + "i" // ping; EOF
	if got.String() != want {
		t.Errorf("reads %s, want %s", got.String(), want)
	}
	lr.release()
}

// The idle timeout bounds the wait for a frame, whole: the deadline is set
// before the first read after a line, not again for the rest of the next.
func TestLineReaderDeadlinePerFrame(t *testing.T) {
	sc := &scriptConn{chunks: [][]byte{[]byte("ab"), []byte("c"), []byte("d\ne"), []byte("f\ng\n"), []byte("h")}}
	lr := lineReaderFor(sc, 1024)
	var set []bool
	sc.onRead = func([]byte) {
		set = append(set, sc.deadlines > 0)
		sc.deadlines = 0
	}
	lines, err := readLines(lr)
	if err != io.EOF || fmt.Sprint(lines) != "[abcd ef g h]" {
		t.Fatalf("got %q, %v", lines, err)
	}
	// As bufio.Reader.ReadSlice was called after each line: reads "ab" (a
	// frame begins), "c", "d\ne", then "f\ng\n" (the first after a line),
	// "h" (likewise), EOF (still "h").
	if want := "[true false false true true false]"; fmt.Sprint(set) != want {
		t.Errorf("deadline set before reads %v, want %s", set, want)
	}
}

// A frame longer than a borrowed buffer is read into one buffer of its own,
// grown as it comes up to -max-frame+2 bytes: a connection holding a
// half-sent frame holds that one buffer, never a borrowed one besides.
func TestLineReaderLongFrameHoldsOneBuffer(t *testing.T) {
	const maxFrame = 64 << 10
	for _, tc := range []struct {
		name  string
		frame int // bytes before '\n'
		chunk int
	}{
		{"the longest frame in small chunks", maxFrame, 1000},
		{"the longest frame with its \\r, in big chunks", maxFrame + 1, 3 * readBufSize},
		{"just over a borrowed buffer", readBufSize + 1, 700},
		{"a frame of a few buffers", 3*readBufSize + 5, readBufSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := bytes.Repeat([]byte("x"), tc.frame)
			if tc.frame > maxFrame {
				frame[tc.frame-1] = '\r'
			}
			in := append(append(frame, '\n'), `{"type":"ping"}`+"\n"...)
			var chunks [][]byte
			for rest := in; len(rest) > 0; rest = rest[min(tc.chunk, len(rest)):] {
				chunks = append(chunks, rest[:min(tc.chunk, len(rest))])
			}
			sc := &scriptConn{chunks: chunks}
			lr := lineReaderFor(sc, maxFrame)
			longest := 0
			sc.onRead = func([]byte) {
				if lr.big != nil && lr.long != nil {
					t.Fatalf("a borrowed buffer held beside the long one (%d bytes)", len(lr.long))
				}
				if cap(lr.long) > maxFrame+2 {
					t.Fatalf("a long buffer of %d bytes, over -max-frame+2", cap(lr.long))
				}
				longest = max(longest, cap(lr.long))
			}
			lines, err := readLines(lr)
			if err != io.EOF || len(lines) != 2 || lines[0] != string(frame) || lines[1] != `{"type":"ping"}` {
				t.Fatalf("got %d lines, %v", len(lines), err)
			}
			if tc.frame > readBufSize && longest == 0 {
				t.Fatalf("a frame of %d bytes was not read into a long buffer", tc.frame)
			}
			if lr.long != nil {
				t.Fatalf("the long buffer (%d bytes) is still held after its frame", len(lr.long))
			}
			lr.release()
		})
	}
}
