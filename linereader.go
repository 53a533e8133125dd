package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"

	"chat/internal/wire"
)

// readPool holds the buffers connections read into while frames arrive.
var readPool = sync.Pool{New: func() any {
	b := make([]byte, readBufSize)
	return &b
}}

// lineReader splits a connection's input into lines. It holds no buffer
// while the connection is idle: a read waits on the connection's own
// idleReadSize bytes, and a buffer is borrowed from readPool only while
// the input does not fit there (the last read filled the buffer, or a frame
// is longer). The connection's frames then come in readBufSize reads, as
// from a bufio.Reader. A frame longer than that is read into a buffer of
// its own, grown as the frame comes in up to -max-frame (and a '\r'), and
// the borrowed one goes back: a connection holds one read buffer at a
// time, so one holding a half-sent frame costs that frame's length.
//
// It lives on the reader goroutine's stack, which is kept short while the
// reader waits: GC halves a goroutine's stack only while under a quarter of
// it is in use (800 bytes of guard counted), so an idle reader with more
// than about 1,240 bytes on its stack would keep 8 KiB, not 4.
type lineReader struct {
	c    *conn
	big  *[]byte // borrowed from readPool; nil: reading into long or c.idleBuf
	long []byte  // read into instead while a frame longer than readBufSize comes
	r, w int     // buf()[r:w] is read and not yet returned
	full bool    // the last read filled the buffer: more is likely waiting
	next bool    // a line was returned since the read deadline was set
	err  error   // the read error, returned once no more lines are read
}

// buf is the buffer being read into.
func (lr *lineReader) buf() []byte {
	switch {
	case lr.long != nil:
		return lr.long
	case lr.big != nil:
		return *lr.big
	}
	return lr.c.idleBuf[:]
}

// line returns the next line read, without its '\n'; it is valid until the
// next call. It reads nothing: with no line (ok false) and no error, fill
// must read more. A frame longer than -max-frame ('\r' before '\n' not
// counted) is a frame_too_large *ProtoError. A read error comes once the
// lines read before it are returned; with io.EOF comes a last frame without
// '\n', if there is one and it fits.
func (lr *lineReader) line() (line []byte, ok bool, err error) {
	max := lr.c.srv.cfg.MaxFrame
	buf := lr.buf()
	if i := bytes.IndexByte(buf[lr.r:lr.w], '\n'); i >= 0 {
		line = buf[lr.r : lr.r+i]
		lr.r += i + 1
		if len(bytes.TrimSuffix(line, []byte{'\r'})) > max {
			return nil, false, lr.tooLarge()
		}
		lr.next = true
		return line, true, nil
	}
	partial := lr.w - lr.r
	if lr.err != nil {
		if partial > 0 && partial <= max && errors.Is(lr.err, io.EOF) {
			line, ok = buf[lr.r:lr.w], true
		}
		lr.r, lr.w = 0, 0
		return line, ok, lr.err
	}
	if partial > max+1 { // +1: a '\r' before '\n' is not counted
		return nil, false, lr.tooLarge()
	}
	return nil, false, nil
}

func (lr *lineReader) tooLarge() *ProtoError {
	return protoErr(wire.CodeFrameTooLarge, "frame longer than %d bytes", lr.c.srv.cfg.MaxFrame)
}

// fill reads more input after the bytes not yet returned, which it first
// moves to the front of the smallest buffer that holds them with room to
// spare: the idle buffer, a borrowed one, or a long one that grows.
func (lr *lineReader) fill() error {
	c := lr.c
	part := lr.buf()[lr.r:lr.w]
	switch {
	case !lr.full && len(part) < len(c.idleBuf):
		lr.r, lr.w = 0, copy(c.idleBuf[:], part)
		lr.release()
		lr.long = nil
	case len(part) < readBufSize:
		if lr.big == nil {
			lr.big = readPool.Get().(*[]byte)
		}
		lr.r, lr.w = 0, copy(*lr.big, part)
		lr.long = nil
	default:
		// A frame longer than a borrowed buffer. line has checked that it
		// fits -max-frame+1, so a buffer of that +1 always has room.
		if len(part) == len(lr.buf()) {
			lr.long = lr.grow(part)
		} else {
			copy(lr.long, part)
		}
		lr.r, lr.w = 0, len(part)
		lr.release()
	}
	if lr.next {
		// The idle timeout runs from the first wait after a line: the
		// reads for the rest of the next one do not extend it.
		c.nc.SetReadDeadline(c.readDeadline())
		lr.next = false
	}
	if c.srv.closing.Load() || c.isDraining() {
		// stopReading may have set its deadline before ours.
		return os.ErrDeadlineExceeded
	}
	buf := lr.buf()
	n, err := c.nc.Read(buf[lr.w:])
	lr.full = n == len(buf)-lr.w
	lr.w += n
	return err
}

// grow returns a long buffer that starts with part, which fills the
// current buffer: four times as long, or the most a frame can need,
// -max-frame+2 bytes (a frame, its '\r' and one byte more), once four
// times would be over half of that. Few steps, little garbage: with the
// default -max-frame, a 16 KiB buffer, then one of 64 KiB.
func (lr *lineReader) grow(part []byte) []byte {
	limit := lr.c.srv.cfg.MaxFrame + 2
	n := 4 * len(part)
	if 2*n > limit {
		n = limit
	}
	b := make([]byte, max(n, len(part)+1))
	copy(b, part)
	return b
}

// release gives the borrowed buffer back.
func (lr *lineReader) release() {
	if lr.big != nil {
		readPool.Put(lr.big)
		lr.big = nil
	}
}
