package main

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"chat/internal/loadgen"
	"chat/internal/wire"
)

// Benchmarks. Not run by plain `go test`; run them with
//
//	go test -run '^$' -bench . -benchtime 2000x .
//
// and with CHAT_TEST_MYSQL set for the MySQL variants of the end-to-end ones.
// The end-to-end benchmarks talk to a real server over loopback TCP with raw
// connections and bufio: nothing on their hot path decodes JSON.

const benchText = "hello there, this is a chat message of a typical length"

// --- the wire layer ---

func BenchmarkDecodeFrame(b *testing.B) {
	line := []byte(`{"type":"chat","rid":4217,"to":1729,"text":"` + benchText + `","cid":"c-2f9a61"}`)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		r, perr := decodeFrame(line)
		if perr != nil || r.Type != "chat" {
			b.Fatal(perr)
		}
	}
}

func benchMessage() *Message {
	return &Message{Message: wire.Message{ID: 981234, From: 12, FromName: "alice", To: 1729, Text: benchText, TS: 1795812345678}, Topic: 77, Seq: 1234}
}

func BenchmarkEncodeMessagePush(b *testing.B) {
	m := benchMessage()
	b.SetBytes(int64(len(messagePush(m, false))))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if p := messagePush(m, false); len(p) == 0 {
			b.Fatal("empty push")
		}
	}
}

func BenchmarkOkReply(b *testing.B) {
	rid := json.RawMessage("4217")
	b.Run("chat", func(b *testing.B) {
		res := messageResult{benchMessage()}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := okReply("chat", rid, res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ping", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := okReply("ping", rid, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("login", func(b *testing.B) {
		friends := make([]User, 20)
		for i := range friends {
			friends[i] = User{ID: int64(i + 100), Name: fmt.Sprintf("friend%d", i), Online: wire.Bool(i%2 == 0)}
		}
		members := make([]Member, 10)
		for i := range members {
			members[i] = Member{ID: int64(i + 200), Name: fmt.Sprintf("member%d", i), Role: wire.RoleMember}
		}
		groups := []Group{{ID: 1, Name: "gophers", Desc: "all about Go", Members: members}}
		res := struct {
			User    User    `json:"user"`
			Friends []User  `json:"friends"`
			Groups  []Group `json:"groups"`
		}{User{ID: 12, Name: "alice", Online: wire.Bool(true)}, friends, groups}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := okReply("login", rid, res); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// --- end to end ---

// benchStores runs fn on a fresh SQLite store, and on MySQL when
// CHAT_TEST_MYSQL is set.
func benchStores(b *testing.B, fn func(b *testing.B, db string)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, sqliteURL(b)) })
	b.Run("mysql", func(b *testing.B) {
		if os.Getenv("CHAT_TEST_MYSQL") == "" {
			b.Skip("CHAT_TEST_MYSQL not set")
		}
		fn(b, mysqlURL(b))
	})
}

// benchConn is a raw client connection: requests are written by hand and
// replies and pushes are recognised by their first bytes.
type benchConn struct {
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	id   int64
	rid  int64
	buf  []byte
	long []byte

	// Set once pump runs: message pushes are counted, replies forwarded.
	msgs    atomic.Int64
	replies chan []byte
	err     atomic.Value // error: why pump stopped
}

func benchDial(b *testing.B, addr string) *benchConn {
	b.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { nc.Close() })
	return &benchConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
}

// readLine returns the next frame without its '\n'; it is valid until the
// next read.
func (c *benchConn) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		c.long = append(c.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = c.br.ReadSlice('\n')
			c.long = append(c.long, line...)
		}
		line = c.long
	}
	if err != nil {
		return nil, err
	}
	return line[:len(line)-1], nil
}

var (
	pushMessagePrefix = []byte(`{"type":"message",`)
	okTrue            = []byte(`"ok":true`)
)

// isReply tells a reply ({"type":T,"rid":...) from a push, which has no rid.
func isReply(line []byte) bool {
	const head = `{"type":"`
	if !bytes.HasPrefix(line, []byte(head)) {
		return false
	}
	rest := line[len(head):]
	i := bytes.IndexByte(rest, '"')
	return i >= 0 && bytes.HasPrefix(rest[i+1:], []byte(`,"rid":`))
}

// pump reads everything the server sends, counting message pushes and
// handing replies (copied) to the replies channel.
func (c *benchConn) pump() {
	defer close(c.replies)
	for {
		line, err := c.readLine()
		if err != nil {
			c.err.Store(err)
			return
		}
		switch {
		case bytes.HasPrefix(line, pushMessagePrefix):
			c.msgs.Add(1)
		case isReply(line):
			c.replies <- append([]byte(nil), line...)
		}
	}
}

func (c *benchConn) startPump() {
	c.replies = make(chan []byte, 4096)
	go c.pump()
}

// nextReply returns the next reply, skipping pushes.
func (c *benchConn) nextReply() ([]byte, error) {
	if c.replies != nil {
		line, ok := <-c.replies
		if !ok {
			err, _ := c.err.Load().(error)
			return nil, fmt.Errorf("connection ended: %v", err)
		}
		return line, nil
	}
	for {
		line, err := c.readLine()
		if err != nil {
			return nil, err
		}
		if isReply(line) {
			return line, nil
		}
	}
}

// call sends one request and decodes its reply; for setup, not hot loops.
func (c *benchConn) call(b *testing.B, typ string, fields map[string]any) map[string]any {
	b.Helper()
	c.rid++
	m := map[string]any{"type": typ, "rid": c.rid}
	for k, v := range fields {
		m[k] = v
	}
	req, _ := json.Marshal(m)
	c.bw.Write(append(req, '\n'))
	if err := c.bw.Flush(); err != nil {
		b.Fatal(err)
	}
	line, err := c.nextReply()
	if err != nil {
		b.Fatalf("%s: %v", typ, err)
	}
	var reply map[string]any
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&reply); err != nil {
		b.Fatalf("%s: %v: %q", typ, err, line)
	}
	if reply["ok"] != true {
		b.Fatalf("%s %v: %s", typ, fields, line)
	}
	return reply
}

func jsonID(b *testing.B, v any) int64 {
	b.Helper()
	obj, _ := v.(map[string]any)
	n, _ := obj["id"].(json.Number)
	id, err := n.Int64()
	if err != nil || id <= 0 {
		b.Fatalf("no id in %v", v)
	}
	return id
}

// benchUser registers and logs in a fresh user on a new raw connection.
func benchUser(b *testing.B, addr, prefix string) *benchConn {
	b.Helper()
	c := benchDial(b, addr)
	name := uniqueName(prefix)
	u := c.call(b, "register", map[string]any{"name": name, "password": testPassword})
	c.id = jsonID(b, u["user"])
	c.call(b, "login", map[string]any{"name": name, "password": testPassword})
	return c
}

// writeChat buffers a chat (to > 0) or group_chat request.
func (c *benchConn) writeChat(to, group int64) {
	c.rid++
	if group != 0 {
		c.buf = append(c.buf[:0], `{"type":"group_chat","rid":`...)
		c.buf = strconv.AppendInt(c.buf, c.rid, 10)
		c.buf = append(c.buf, `,"group":`...)
		c.buf = strconv.AppendInt(c.buf, group, 10)
	} else {
		c.buf = append(c.buf[:0], `{"type":"chat","rid":`...)
		c.buf = strconv.AppendInt(c.buf, c.rid, 10)
		c.buf = append(c.buf, `,"to":`...)
		c.buf = strconv.AppendInt(c.buf, to, 10)
	}
	c.buf = append(c.buf, `,"text":"`+benchText+`"}`+"\n"...)
	c.bw.Write(c.buf)
}

// waitMsgs waits until each conn has counted want[i] message pushes.
func waitMsgs(conns []*benchConn, want []int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for i, c := range conns {
		for c.msgs.Load() < want[i] {
			if time.Now().After(deadline) {
				lost := int64(0)
				short := 0
				for j, c := range conns {
					if d := want[j] - c.msgs.Load(); d > 0 {
						lost += d
						short++
					}
				}
				err, _ := c.err.Load().(error)
				return fmt.Errorf("%d message pushes missing on %d of %d connections after %v (first short conn: %d of %d, pump: %v)",
					lost, short, len(conns), timeout, c.msgs.Load(), want[i], err)
			}
			time.Sleep(200 * time.Microsecond)
		}
		if got := c.msgs.Load(); got > want[i] {
			return fmt.Errorf("connection %d got %d message pushes, want %d", i, got, want[i])
		}
	}
	return nil
}

// BenchmarkChatRoundTrip measures private messages from one logged-in user
// to another: one at a time (the latency of a stored, durable chat), and
// pipelined with 64 in flight (throughput). An op is one message.
func BenchmarkChatRoundTrip(b *testing.B) {
	benchStores(b, func(b *testing.B, db string) {
		ts := startServer(b, db)
		sender := benchUser(b, ts.addr, "bsend")
		recipient := benchUser(b, ts.addr, "brecv")
		recipient.startPump()

		b.Run("sequential", func(b *testing.B) {
			base := recipient.msgs.Load()
			lat := make([]time.Duration, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				sender.writeChat(recipient.id, 0)
				if err := sender.bw.Flush(); err != nil {
					b.Fatal(err)
				}
				line, err := sender.nextReply()
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Contains(line, okTrue) {
					b.Fatalf("chat failed: %s", line)
				}
				lat[i] = time.Since(t0)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
			if err := waitMsgs([]*benchConn{recipient}, []int64{base + int64(b.N)}, 30*time.Second); err != nil {
				b.Fatal(err)
			}
		})

		b.Run("pipelined", func(b *testing.B) {
			const window = 64
			base := recipient.msgs.Load()
			b.ResetTimer()
			sent, done := 0, 0
			for done < b.N {
				for sent < b.N && sent-done < window {
					sender.writeChat(recipient.id, 0)
					sent++
				}
				if err := sender.bw.Flush(); err != nil {
					b.Fatal(err)
				}
				for {
					line, err := sender.nextReply()
					if err != nil {
						b.Fatal(err)
					}
					if !bytes.Contains(line, okTrue) {
						b.Fatalf("chat failed: %s", line)
					}
					done++
					if done == sent || sender.br.Buffered() == 0 {
						break
					}
				}
			}
			// Delivered, not just stored: the recipient has every message.
			if err := waitMsgs([]*benchConn{recipient}, []int64{base + int64(b.N)}, 60*time.Second); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	})
}

// BenchmarkGroupFanout measures group messages to a group of 100 online
// members, each reading on its own connection, sent by one or four members
// pipelining 64 messages each. An op is one group message; deliveries/s
// counts pushes received by the 99 other members.
func BenchmarkGroupFanout(b *testing.B) {
	const members = 100
	benchStores(b, func(b *testing.B, db string) {
		ts := startServer(b, db)
		conns := make([]*benchConn, members)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var setupErr error
		sem := make(chan struct{}, 8)
		for i := range conns {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				// benchUser may b.Fatal, which must not run off the benchmark's
				// goroutine; register by hand here.
				c, err := benchUserNoFatal(ts.addr, "bfan")
				mu.Lock()
				defer mu.Unlock()
				if err != nil && setupErr == nil {
					setupErr = err
				}
				conns[i] = c
			}()
		}
		wg.Wait()
		for _, c := range conns {
			if c != nil {
				b.Cleanup(func() { c.nc.Close() })
			}
		}
		if setupErr != nil {
			b.Fatal(setupErr)
		}
		for _, c := range conns {
			c.startPump()
		}
		g := conns[0].call(b, "create_group", map[string]any{"name": uniqueName("bench-group")})
		group := jsonID(b, g["group"])
		for _, c := range conns[1:] {
			c.call(b, "join_group", map[string]any{"group": group})
		}

		for _, senders := range []int{1, 4} {
			b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
				const window = 64
				want := make([]int64, members)
				share := make([]int, senders)
				for i := 0; i < b.N; i++ {
					share[i%senders]++
				}
				for i, c := range conns {
					want[i] = c.msgs.Load() + int64(b.N)
					if i < senders {
						want[i] -= int64(share[i]) // no push of one's own message
					}
				}
				errs := make(chan error, senders)
				b.ResetTimer()
				for s := 0; s < senders; s++ {
					go func(c *benchConn, n int) {
						sent, done := 0, 0
						for done < n {
							for sent < n && sent-done < window {
								c.writeChat(0, group)
								sent++
							}
							if err := c.bw.Flush(); err != nil {
								errs <- err
								return
							}
							for {
								line, err := c.nextReply()
								if err != nil {
									errs <- err
									return
								}
								if !bytes.Contains(line, okTrue) {
									errs <- fmt.Errorf("group_chat failed: %s", line)
									return
								}
								done++
								if done == sent || len(c.replies) == 0 {
									break
								}
							}
						}
						errs <- nil
					}(conns[s], share[s])
				}
				for s := 0; s < senders; s++ {
					if err := <-errs; err != nil {
						b.Fatal(err)
					}
				}
				if err := waitMsgs(conns, want, 120*time.Second); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				secs := b.Elapsed().Seconds()
				b.ReportMetric(float64(b.N)/secs, "msgs/s")
				b.ReportMetric(float64(b.N)*(members-1)/secs, "deliveries/s")
			})
		}
	})
}

// benchUserNoFatal is benchUser for goroutines other than the benchmark's.
func benchUserNoFatal(addr, prefix string) (*benchConn, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := &benchConn{nc: nc, br: bufio.NewReaderSize(nc, 64<<10), bw: bufio.NewWriterSize(nc, 64<<10)}
	name := uniqueName(prefix)
	for _, req := range []string{
		fmt.Sprintf(`{"type":"register","rid":1,"name":%q,"password":%q}`, name, testPassword),
		fmt.Sprintf(`{"type":"login","rid":2,"name":%q,"password":%q}`, name, testPassword),
	} {
		c.bw.WriteString(req + "\n")
		if err := c.bw.Flush(); err != nil {
			nc.Close()
			return nil, err
		}
		line, err := c.nextReply()
		if err != nil {
			nc.Close()
			return nil, err
		}
		if !bytes.Contains(line, okTrue) {
			nc.Close()
			return nil, fmt.Errorf("%s: %s", req, line)
		}
		if c.id == 0 {
			var r struct {
				User struct {
					ID int64 `json:"id"`
				} `json:"user"`
			}
			if err := json.Unmarshal(line, &r); err != nil || r.User.ID <= 0 {
				nc.Close()
				return nil, fmt.Errorf("register reply %s: %v", line, err)
			}
			c.id = r.User.ID
		}
	}
	c.rid = 2
	return c, nil
}

// BenchmarkMySQLCommitFloor measures what one tiny MySQL transaction
// (BEGIN, a one-row INSERT, COMMIT) takes on this machine, paced at 200 a
// second: the floor under any latency the server can offer on MySQL, since
// every message waits for at least one such commit. Run it alone and beside
// a load (see BENCHMARKS.md):
//
//	CHAT_TEST_MYSQL='root:@tcp(127.0.0.1:3306)/test' go test -run '^$' -bench MySQLCommitFloor -benchtime 1000x .
func BenchmarkMySQLCommitFloor(b *testing.B) {
	dsn := strings.TrimPrefix(mysqlURL(b), "mysql:")
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE floor (id BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT) ENGINE=InnoDB`); err != nil {
		b.Fatal(err)
	}
	var h loadgen.Histogram
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		<-tick.C
		start := time.Now()
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO floor (v) VALUES (?)`, i); err != nil {
			b.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		h.Record(time.Since(start))
	}
	s := h.Summary()
	b.ReportMetric(s.P50, "p50-ms")
	b.ReportMetric(s.P90, "p90-ms")
	b.ReportMetric(s.P99, "p99-ms")
	b.ReportMetric(s.Max, "max-ms")
}
