package main

import "sync"

// batcher is group commit: items submitted while a batch is being stored
// queue up and go together in the next one, so under load one transaction
// carries many requests, and alone a request waits for nobody. Batches run
// one at a time, in order, so items are stored in the order they were
// submitted. (One queue per node: a second, sharded by sender, no longer
// paid for its transactions on 2 cores; BENCHMARKS.md, "Without
// pipelining".)
type batcher[T any] struct {
	max    int
	run    func([]T)
	mu     sync.Mutex // guards queue and closed
	queue  []T
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newBatcher[T any](max int, run func([]T)) *batcher[T] {
	b := &batcher[T]{max: max, run: run, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go b.loop()
	return b
}

// submit queues it; false once the batcher is closed.
func (b *batcher[T]) submit(it T) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	b.queue = append(b.queue, it)
	b.mu.Unlock()
	b.signal()
	return true
}

func (b *batcher[T]) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// close stores what is queued, then stops.
func (b *batcher[T]) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.signal()
	<-b.done
}

func (b *batcher[T]) loop() {
	defer close(b.done)
	var batch []T
	for {
		b.mu.Lock()
		for len(b.queue) == 0 {
			if b.closed {
				b.mu.Unlock()
				return
			}
			b.mu.Unlock()
			<-b.wake
			b.mu.Lock()
		}
		n := min(len(b.queue), b.max)
		batch = append(batch[:0], b.queue[:n]...)
		rest := copy(b.queue, b.queue[n:])
		clear(b.queue[rest:])
		b.queue = b.queue[:rest]
		b.mu.Unlock()
		b.run(batch)
		clear(batch)
	}
}
