package main

import (
	"sync/atomic"
	"testing"
	"time"
)

// The trim runs while the server is quiet, never while messages are stored.
func TestTrimWhenQuiet(t *testing.T) {
	s := &Server{metrics: newMetrics()}
	quit := make(chan struct{})
	var trims atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.trimWhenQuiet(20*time.Millisecond, quit, func() { trims.Add(1) })
	}()
	busy := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
			s.metrics.messagesStored.Add(1)
		}
	}
	busy(150 * time.Millisecond)
	if n := trims.Load(); n != 0 {
		t.Errorf("%d trims while busy", n)
	}
	time.Sleep(200 * time.Millisecond)
	quiet := trims.Load()
	if quiet < 2 {
		t.Errorf("%d trims in 200 ms of quiet at one per 20 ms, want several", quiet)
	}
	busy(60 * time.Millisecond) // the tick that sees the burst end trims nothing
	before := trims.Load()
	busy(100 * time.Millisecond)
	if n := trims.Load(); n != before {
		t.Errorf("%d trims during a burst", n-before)
	}
	close(quit)
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("trimWhenQuiet did not return after quit")
	}
}
