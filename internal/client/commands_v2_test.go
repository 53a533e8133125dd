package client

import (
	"encoding/json"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fail answers r with an error reply of code.
func (fs *fakeServer) fail(r map[string]any, code string) {
	rid, _ := json.Marshal(r["rid"])
	typ, _ := json.Marshal(r["type"])
	fs.send(`{"type":` + string(typ) + `,"rid":` + string(rid) + `,"ok":false,"code":"` + code + `","error":"x"}`)
}

// checkFields checks a request's fields (all but type and rid) against
// want, a JSON object.
func checkFields(t *testing.T, r map[string]any, want string) {
	t.Helper()
	got := map[string]any{}
	for k, v := range r {
		if k != "type" && k != "rid" {
			got[k] = v
		}
	}
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %s: %v", want, err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.Marshal(got)
		t.Errorf("%s request: fields %s, want %s", r["type"], g, want)
	}
}

// clientTimes makes output comparable: every time becomes TIME.
var clientTimes = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d`)

// testLogin is the login reply of the scripted tests: alice (1), with bob
// (2) as a friend and the group #3 gophers (alice its creator, bob a member).
const testLogin = `"user":{"id":1,"name":"alice","online":true},"friends":[{"id":2,"name":"bob","online":true}],` +
	`"groups":[{"id":3,"name":"gophers","desc":"","members":[{"id":1,"name":"alice","role":"creator","online":true},{"id":2,"name":"bob","role":"member","online":true}]}]`

// exchange is one request the client must make and its answer.
type exchange struct {
	typ    string
	fields string // the request's fields as a JSON object
	reply  string // the ok reply's fields, or "!code" for an error reply
}

// Every command of version 2 against a scripted server: the requests it
// makes (and only those), their fields, and the lines their replies print.
func TestCommandsV2(t *testing.T) {
	msg := func(id int, extra string) string {
		return `{"id":` + strconv.Itoa(id) + `,"from":1,"from_name":"alice","to":2,"text":"new text","ts":1795812345678` + extra + `}`
	}
	gophers := func(extra string) string {
		return `"group":{"id":3,"name":"gophers","desc":"","members":[{"id":1,"name":"alice","role":"creator","online":true}]` + extra + `}`
	}
	tests := []struct {
		name   string
		line   string
		ex     []exchange
		want   []string
		failed bool // exit status 1
	}{
		{"edit", "/edit 981 new text", []exchange{{"edit", `{"id":981,"text":"new text"}`, `"message":` + msg(981, `,"edited":1795812349999`)}},
			[]string{"ok edited TIME [981] you -> bob: new text"}, false},
		{"edit over lines", "/edit [981] new\\\ntext", []exchange{{"edit", `{"id":981,"text":"new\ntext"}`, `"message":` + msg(981, `,"edited":1795812349999`)}},
			[]string{"ok edited TIME [981] you -> bob: new text"}, false},
		{"edit forbidden", "/edit 5 x", []exchange{{"edit", `{"id":5,"text":"x"}`, "!forbidden"}},
			[]string{"error edit: you are not allowed to do that (only its sender may edit a message, and not once it is deleted) (forbidden)"}, true},
		{"delete", "/del 981", []exchange{{"delete_message", `{"id":981}`, ""}}, []string{"ok deleted [981]"}, false},
		{"delete unknown", "/delete 7", []exchange{{"delete_message", `{"id":7}`, "!no_such_message"}},
			[]string{"error del: there is no such message (no_such_message)"}, true},
		{"convs", "/convs", []exchange{{"conversations", `{"limit":100}`, `"conversations":[` +
			`{"with":{"id":4,"name":"carol"},"last":{"id":12,"from":4,"from_name":"carol","to":1,"text":"hi","ts":1},"read":10,"unread":2},` +
			`{"group":{"id":3,"name":"gophers","desc":""},"last":null,"read":0,"unread":0}]`}},
			[]string{"ok convs: 2 conversations, 2 unread messages", "conv carol (id 4): 2 unread; last TIME [12] carol: hi", "conv #3 gophers: 0 unread; no messages"}, false},
		{"history after", "/history bob 5 after 900", []exchange{{"history", `{"with":2,"limit":5,"after":900}`,
			`"messages":[{"id":901,"from":2,"from_name":"bob","to":1,"text":"x","ts":1,"edited":2},{"id":902,"from":2,"from_name":"bob","to":1,"text":"","ts":1,"deleted":true}]`},
			{"read", `{"with":2,"id":902}`, ""}}, // what /history showed is read
			[]string{"ok history with bob: 2 messages", "history TIME [901 edited] bob -> you: x", "history TIME [902 deleted] bob -> you: (deleted)"}, false},
		{"history before", "/history #3 before 900", []exchange{{"history", `{"group":3,"limit":20,"before":900}`, `"messages":[]`}},
			[]string{"ok history of #3 gophers: 0 messages"}, false},
		{"add requests", "/add dave", []exchange{{"add_friend", `{"name":"dave"}`, `"friend":{"id":6,"name":"dave","online":true},"status":"requested"`}},
			[]string{"ok friend request sent to dave (id 6)"}, false},
		{"add befriends", "/add 6", []exchange{{"add_friend", `{"friend":6}`, `"friend":{"id":6,"name":"dave","online":true},"status":"friends"`}},
			[]string{"ok friend dave (id 6) (online)"}, false},
		{"add blocked", "/add dave", []exchange{{"add_friend", `{"name":"dave"}`, "!blocked"}},
			[]string{"error add: that user has blocked you (blocked)"}, true},
		{"requests", "/requests", []exchange{{"friend_requests", `{}`, `"incoming":[{"id":4,"name":"carol"}],"outgoing":[]`}},
			[]string{"friend requests: incoming carol (id 4)"}, false},
		{"accept", "/accept carol", []exchange{{"add_friend", `{"name":"carol"}`, `"friend":{"id":4,"name":"carol","online":true},"status":"friends"`}},
			[]string{"ok friend carol (id 4) (online)"}, false},
		{"accept no request", "/accept 6", []exchange{{"add_friend", `{"friend":6}`, `"friend":{"id":6,"name":"dave"},"status":"requested"`}},
			[]string{"ok friend request sent to dave (id 6) (there was no request from them to accept)"}, false},
		{"decline", "/decline carol", []exchange{{"decline_friend", `{"name":"carol"}`, ""}}, []string{"ok declined carol"}, false},
		{"decline by id", "/decline 2", []exchange{{"decline_friend", `{"friend":2}`, ""}}, []string{"ok declined bob"}, false},
		{"unfriend", "/unfriend bob", []exchange{{"remove_friend", `{"name":"bob"}`, ""}}, []string{"ok unfriended bob"}, false},
		{"unfriend nobody", "/unfriend zed", []exchange{{"remove_friend", `{"name":"zed"}`, "!no_such_user"}},
			[]string{"error unfriend: there is no such user (no_such_user)"}, true},
		{"block", "/block bob", []exchange{{"block", `{"name":"bob"}`, ""}}, []string{"ok blocked bob"}, false},
		{"block by id", "/block 2", []exchange{{"block", `{"user":2}`, ""}}, []string{"ok blocked bob"}, false},
		{"unblock", "/unblock @12", []exchange{{"unblock", `{"name":"12"}`, ""}}, []string{"ok unblocked 12"}, false},
		{"blocks", "/blocks", []exchange{{"blocks", `{}`, `"users":[]`}}, []string{"blocked: none"}, false},
		{"invite", "/invite #gophers carol", []exchange{{"invite", `{"group":3,"name":"carol"}`, ""}},
			[]string{"ok invited carol to #3 gophers"}, false},
		{"invite by id", "/invite 3 4", []exchange{{"invite", `{"group":3,"user":4}`, ""}}, []string{"ok invited user 4 to #3 gophers"}, false},
		{"invite forbidden", "/invite 3 carol", []exchange{{"invite", `{"group":3,"name":"carol"}`, "!forbidden"}},
			[]string{"error invite: you are not allowed to do that (in a private group only its creator or an admin may invite) (forbidden)"}, true},
		{"invite to an unknown name", "/invite #nosuch carol", nil,
			[]string{`error invite: no group named "nosuch" among yours: use its id (/groups lists them)`}, true},
		{"kick looks the user up", "/kick 3 carol", []exchange{
			{"whois", `{"name":"carol"}`, `"user":{"id":4,"name":"carol"}`},
			{"kick_member", `{"group":3,"user":4}`, ""}},
			[]string{"ok removed carol from #3 gophers"}, false},
		{"kick a known user", "/kick #gophers bob", []exchange{{"kick_member", `{"group":3,"user":2}`, ""}},
			[]string{"ok removed bob from #3 gophers"}, false},
		{"kick nobody", "/kick 3 zed", []exchange{{"whois", `{"name":"zed"}`, "!no_such_user"}},
			[]string{"error kick: there is no user zed (no_such_user)"}, true},
		{"role", "/role 3 bob admin", []exchange{{"set_role", `{"group":3,"user":2,"role":"admin"}`, ""}},
			[]string{"ok bob is now admin of #3 gophers"}, false},
		{"role forbidden", "/role 3 bob member", []exchange{{"set_role", `{"group":3,"user":2,"role":"member"}`, "!forbidden"}},
			[]string{"error role: you are not allowed to do that (only the group's creator may change roles) (forbidden)"}, true},
		{"rename", "/setgroup 3 name gophers2", []exchange{{"update_group", `{"group":3,"name":"gophers2"}`,
			`"group":{"id":3,"name":"gophers2","desc":"","members":[]}`}},
			[]string{"ok updated #3 gophers2"}, false},
		{"describe", "/setgroup #gophers desc all things Go", []exchange{{"update_group", `{"group":3,"desc":"all things Go"}`,
			`"group":{"id":3,"name":"gophers","desc":"all things Go","members":[]}`}},
			[]string{"ok updated #3 gophers: all things Go"}, false},
		{"undescribe", "/setgroup 3 desc", []exchange{{"update_group", `{"group":3,"desc":""}`, gophers("")}},
			[]string{"ok updated #3 gophers"}, false},
		{"private", "/setgroup 3 private", []exchange{{"update_group", `{"group":3,"private":true}`, gophers(`,"private":true`)}},
			[]string{"ok updated #3 gophers (private)"}, false},
		{"public", "/setgroup 3 public", []exchange{{"update_group", `{"group":3,"private":false}`, gophers("")}},
			[]string{"ok updated #3 gophers"}, false},
		{"delete a group", "/delgroup 3", []exchange{{"delete_group", `{"group":3}`, ""}}, []string{"ok deleted group #3 gophers"}, false},
		{"find groups", "/findgroups go", []exchange{{"find_groups", `{"query":"go","limit":100}`,
			`"groups":[{"id":3,"name":"gophers","desc":"all things Go","count":2},{"id":9,"name":"golf","desc":"","count":1}]`}},
			[]string{"ok findgroups: 2 groups", "group #3 gophers (2 members): all things Go", "group #9 golf (1 member)"}, false},
		{"find every group", "/findgroups", []exchange{{"find_groups", `{"limit":100}`, `"groups":[]`}},
			[]string{"ok findgroups: 0 groups"}, false},
		{"create private", "/create -private inner just us", []exchange{{"create_group", `{"name":"inner","desc":"just us","private":true}`,
			`"group":{"id":5,"name":"inner","desc":"just us","private":true,"members":[]}`}},
			[]string{"ok created #5 inner (private)"}, false},
		{"create public", "/create outer", []exchange{{"create_group", `{"name":"outer"}`, `"group":{"id":6,"name":"outer","desc":"","members":[]}`}},
			[]string{"ok created #6 outer"}, false},
		{"sessions", "/sessions", []exchange{{"sessions", `{}`, `"sessions":[{"device":"box","since":1},{"device":"phone","since":2}]`}},
			[]string{"sessions (2): box (this device) since TIME, phone since TIME"}, false},
		{"passwd", "/passwd old1pw new pass", []exchange{{"change_password", `{"old":"old1pw","new":"new pass"}`, ""}},
			[]string{"ok password changed; your other devices were logged out"}, false},
		{"passwd wrong", "/passwd wrong1 new2pw", []exchange{{"change_password", `{"old":"wrong1","new":"new2pw"}`, "!bad_credentials"}},
			[]string{"error passwd: wrong name or password (bad_credentials)"}, true},
		{"passwd half", "/passwd old1pw", nil, []string{"error: usage: /passwd [OLD NEW]"}, true},
		{"passwd asks", "/passwd", nil, []string{"error: without a terminal, give the password on the line: /passwd OLD NEW"}, true},
		{"delete account asks", "/delete-account", nil,
			[]string{"error: without a terminal, give the password on the line: /delete-account PASSWORD"}, true},
		{"delete account", "/delete-account pass word", []exchange{{"delete_account", `{"password":"pass word"}`, ""}},
			[]string{"ok deleted account alice"}, false},
		{"logout all", "/logout all", []exchange{{"logout", `{"all":true}`, ""}}, []string{"ok logout (every device)"}, false},
		{"logout", "loginout", []exchange{{"logout", `{}`, ""}}, []string{"ok logout"}, false},
		{"join forbidden", "/join 5", []exchange{{"join_group", `{"group":5}`, "!forbidden"}},
			[]string{"error join: you are not allowed to do that (the group is private, or you were removed from it: it takes an invitation) (forbidden)"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := newFakeServer(t)
			cfg := testConfig(fs.addr())
			cfg.device = "box"
			out := &screen{t: t}
			rc := make(chan int, 1)
			pr, pw := io.Pipe()
			go func() { rc <- run(cfg, pr, out, io.Discard, false) }()
			io.WriteString(pw, "/login alice password1\n")
			login := fs.next("login")
			checkFields(t, login, `{"name":"alice","password":"password1","device":"box"}`)
			fs.reply(login, testLogin)
			// The command follows once the login is in, as typed by a user
			// who read its lines: the names it brought are known.
			out.waitFor(0, "\ngroups: ")
			io.WriteString(pw, tt.line+"\n")
			pw.Close()
			for _, ex := range tt.ex {
				r := fs.next(ex.typ)
				checkFields(t, r, ex.fields)
				if code, ok := strings.CutPrefix(ex.reply, "!"); ok {
					fs.fail(r, code)
				} else {
					fs.reply(r, ex.reply)
				}
			}
			var status int
			select {
			case status = <-rc:
			case <-time.After(10 * time.Second):
				t.Fatal("the client did not exit")
			}
			lines := strings.Split(strings.TrimSuffix(clientTimes.ReplaceAllString(out.String(), "TIME"), "\n"), "\n")
			if len(lines) < 3 || !strings.HasPrefix(lines[0], "ok login alice") {
				t.Fatalf("output:\n%s", out.String())
			}
			if got := lines[3:]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if want := map[bool]int{false: 0, true: 1}[tt.failed]; status != want {
				t.Errorf("exit status %d, want %d", status, want)
			}
			if len(fs.kept) != 0 || len(fs.reqs) != 0 {
				t.Errorf("requests left over: %v, %d more", fs.kept, len(fs.reqs))
			}
		})
	}
}
