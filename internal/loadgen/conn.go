package loadgen

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"chat/internal/wire"
)

// conn is one connection to the server. Before the run it is used
// synchronously (call); during the run one reader goroutine owns r, and
// writers share w under wmu.
type conn struct {
	nc      net.Conn
	r       *bufio.Reader
	scratch []byte // a line longer than r's buffer

	wmu sync.Mutex // guards the fields below
	w   *bufio.Writer
	rid int64 // setup calls
}

// dial connects to addr: host:port over TCP, a ws:// or wss:// URL over
// WebSocket (ws.go; tlsConf is wss's).
func dial(addr string, tlsConf *tls.Config, rbuf, wbuf int) (*conn, error) {
	var nc net.Conn
	var err error
	if isWS(addr) {
		nc, err = dialWS(addr, tlsConf, rbuf)
	} else {
		nc, err = net.DialTimeout("tcp", addr, 10*time.Second)
	}
	if err != nil {
		return nil, err
	}
	return &conn{nc: nc, r: bufio.NewReaderSize(nc, rbuf), w: bufio.NewWriterSize(nc, wbuf)}, nil
}

// readLine returns the next frame, valid until the next call.
func (c *conn) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err == nil || !errors.Is(err, bufio.ErrBufferFull) {
		return line, err
	}
	c.scratch = append(c.scratch[:0], line...)
	for errors.Is(err, bufio.ErrBufferFull) {
		line, err = c.r.ReadSlice('\n')
		c.scratch = append(c.scratch, line...)
	}
	return c.scratch, err
}

// write sends whole frames and flushes.
func (c *conn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Write(b)
	return c.w.Flush()
}

// reply is a setup call's answer.
type reply struct {
	ok      bool
	code    wire.Code
	userID  int64
	groupID int64
}

// call sends one request of type typ with fields (JSON members without
// braces, e.g. `"group":7`), numbered with the next rid, and reads until
// its reply, skipping pushes.
func (c *conn) call(typ, fields string) (reply, error) {
	c.rid++
	req := `{"type":"` + typ + `","rid":` + strconv.FormatInt(c.rid, 10)
	if fields != "" {
		req += "," + fields
	}
	if err := c.write([]byte(req + "}\n")); err != nil {
		return reply{}, err
	}
	c.nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	defer c.nc.SetReadDeadline(time.Time{})
	var f frame
	for {
		line, err := c.readLine()
		if err != nil {
			return reply{}, fmt.Errorf("%s: %w", typ, err)
		}
		if scanFrame(line, &f) != nil || !f.hasRid || f.rid != c.rid {
			continue
		}
		return reply{ok: f.ok, code: wire.Code(f.code), userID: f.userID, groupID: f.groupID}, nil
	}
}

// credentials are the members of a register or login request.
func credentials(name, password string) string {
	b := append([]byte(`"name":`), wire.AppendString(nil, name)...)
	b = append(b, `,"password":`...)
	return string(wire.AppendString(b, password))
}

// login registers name (an existing name is fine: runs may share users
// through -prefix) and logs it in, returning the user id.
func (c *conn) login(name, password string) (int64, error) {
	return c.loginDevice(name, password, "", true)
}

// loginDevice logs name in on device ("": no device field, as a client
// before v2 sends), registering it first when register is set.
func (c *conn) loginDevice(name, password, device string, register bool) (int64, error) {
	creds := credentials(name, password)
	if register {
		r, err := c.call("register", creds)
		if err != nil {
			return 0, err
		}
		if !r.ok && r.code != wire.CodeNameTaken {
			return 0, fmt.Errorf("register %s: %s", name, r.code)
		}
	}
	fields := creds
	if device != "" {
		fields += `,"device":` + string(wire.AppendString(nil, device))
	}
	r, err := c.call("login", fields)
	if err != nil {
		return 0, err
	}
	if !r.ok {
		return 0, fmt.Errorf("login %s: %s", name, r.code)
	}
	return r.userID, nil
}
