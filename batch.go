package main

import "sync"

// batcher is group commit: items submitted while a batch is being stored
// queue up and go together in the next one, so under load one transaction
// carries many requests, and alone a request waits for nobody. Items are
// spread over shards by key; a shard's batches run one at a time, in order,
// so items with the same key are stored in the order they were submitted.
type batcher[T any] struct {
	shards []*batchShard[T]
	key    func(T) uint64
}

type batchShard[T any] struct {
	max    int
	run    func([]T)
	mu     sync.Mutex // guards queue and closed
	queue  []T
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newBatcher[T any](shards, max int, key func(T) uint64, run func([]T)) *batcher[T] {
	b := &batcher[T]{key: key}
	for range shards {
		sh := &batchShard[T]{max: max, run: run, wake: make(chan struct{}, 1), done: make(chan struct{})}
		b.shards = append(b.shards, sh)
		go sh.loop()
	}
	return b
}

// submit queues it; false once the batcher is closed.
func (b *batcher[T]) submit(it T) bool {
	sh := b.shards[b.key(it)%uint64(len(b.shards))]
	sh.mu.Lock()
	if sh.closed {
		sh.mu.Unlock()
		return false
	}
	sh.queue = append(sh.queue, it)
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
	return true
}

// close stores what is queued, then stops the shards.
func (b *batcher[T]) close() {
	for _, sh := range b.shards {
		sh.mu.Lock()
		sh.closed = true
		sh.mu.Unlock()
		select {
		case sh.wake <- struct{}{}:
		default:
		}
	}
	for _, sh := range b.shards {
		<-sh.done
	}
}

func (sh *batchShard[T]) loop() {
	defer close(sh.done)
	var batch []T
	for {
		sh.mu.Lock()
		for len(sh.queue) == 0 {
			if sh.closed {
				sh.mu.Unlock()
				return
			}
			sh.mu.Unlock()
			<-sh.wake
			sh.mu.Lock()
		}
		n := min(len(sh.queue), sh.max)
		batch = append(batch[:0], sh.queue[:n]...)
		rest := copy(sh.queue, sh.queue[n:])
		clear(sh.queue[rest:])
		sh.queue = sh.queue[:rest]
		sh.mu.Unlock()
		sh.run(batch)
		clear(batch)
	}
}
