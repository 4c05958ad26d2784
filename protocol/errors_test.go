package protocol

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestAppendErrorPayload(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		// wire.md 1.3 and tests.md C-client-2/3.
		{"unknown command", CommandNotFound("nope"),
			`{"error":"Command \"nope\" not found","code":"ENOTFOUND","name":"CommandError"}`},
		{"unknown empty command", CommandNotFound(""),
			`{"error":"Command \"\" not found","code":"ENOTFOUND","name":"CommandError"}`},
		{"plain error", errors.New("This is a test error"),
			`{"error":"This is a test error","code":"ESERVER","name":"Error"}`},
		{"middleware reject", errors.New("Unauthorized"),
			`{"error":"Unauthorized","code":"ESERVER","name":"Error"}`},
		{"code error", NewCodeError("Not allowed", "EFORBIDDEN", "AuthError"),
			`{"error":"Not allowed","code":"EFORBIDDEN","name":"AuthError"}`},
		{"code error without name", &CodeError{Message: "m", Code: "EX"},
			`{"error":"m","code":"EX","name":"CodeError"}`},
		{"code error without code", &CodeError{Message: "m"},
			`{"error":"m","code":"ESERVER","name":"CodeError"}`},
		{"wrapped code error", fmt.Errorf("auth: %w", NewCodeError("Not allowed", "EFORBIDDEN", "AuthError")),
			`{"error":"Not allowed","code":"EFORBIDDEN","name":"AuthError"}`},
		{"joined code error", errors.Join(errors.New("other"), fmt.Errorf("w: %w", NewCodeError("x", "EX", "N"))),
			`{"error":"x","code":"EX","name":"N"}`},
		{"error with As method", asError{}, `{"error":"via As","code":"EAS","name":"AsError"}`},
		{"nil", nil, `{"error":"null","code":"EUNKNOWN","name":"UnknownError"}`},
		{"non-error throw", UnknownError("boom"), `{"error":"boom","code":"EUNKNOWN","name":"UnknownError"}`},
		{"not writable", RecordNotWritable("user:1"),
			`{"error":"Record \"user:1\" is not writable by this connection.","code":"ESERVER","name":"Error"}`},
		{"publish failed", RecordPublishFailed("user:1", errors.New("redis down")),
			`{"error":"Failed to publish update for record \"user:1\": redis down","code":"ESERVER","name":"Error"}`},
		{"invalid argument", InvalidArgument(`Invalid payload: expected {"roomName": string}`),
			`{"error":"Invalid payload: expected {\"roomName\": string}","code":"EINVALID","name":"CodeError"}`},
		{"forbidden", Forbidden("not allowed to join this room"),
			`{"error":"not allowed to join this room","code":"EFORBIDDEN","name":"CodeError"}`},
		{"escaping", errors.New("line\n\"q\"\x00"),
			`{"error":"line\n\"q\"\u0000","code":"ESERVER","name":"Error"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkJSON(t, AppendErrorPayload(nil, tt.err), tt.want)
			// What a Go client makes of it.
			ce, ok := ParseErrorPayload([]byte(tt.want))
			if !ok {
				t.Fatal("ParseErrorPayload did not recognise the payload")
			}
			again := AppendErrorPayload(nil, ce)
			if string(again) != tt.want {
				t.Fatalf("re-encoded %s", again)
			}
		})
	}
}

func TestAppendErrorReply(t *testing.T) {
	got := AppendErrorReply(nil, 7, "nope", CommandNotFound("nope"))
	checkJSON(t, got, `{"id":7,"command":"nope","payload":{"error":"Command \"nope\" not found","code":"ENOTFOUND","name":"CommandError"}}`)
	got = AppendErrorReply(nil, 9, CmdJoinRoom, errors.New("Unauthorized"))
	checkJSON(t, got, `{"id":9,"command":"mesh/join-room","payload":{"error":"Unauthorized","code":"ESERVER","name":"Error"}}`)
}

func TestParseErrorPayload(t *testing.T) {
	tests := []struct {
		payload string
		ok      bool
		want    CodeError
	}{
		{`{"error":"x","code":"ENOTFOUND","name":"CommandError"}`, true, CodeError{"x", "ENOTFOUND", "CommandError"}},
		{` { "name" : "N" , "error" : "x\n\u00e9" } `, true, CodeError{"x\né", "", "N"}},
		{`{"error":"x","code":5,"name":null}`, true, CodeError{"x", "", ""}},
		{`{"error":"first","error":"last"}`, true, CodeError{"last", "", ""}},
		{`{"\u0065rror":"escaped key"}`, true, CodeError{"escaped key", "", ""}},
		{`{"error":""}`, true, CodeError{"", "", ""}},
		{`{"error":"x","error":5}`, false, CodeError{}},
		{`{"error":{"message":"x"}}`, false, CodeError{}},
		{`{"success":false}`, false, CodeError{}},
		{`{"success":true,"history":[]}`, false, CodeError{}},
		{`{"Error":"x"}`, false, CodeError{}},
		{`"error"`, false, CodeError{}},
		{`["error","x"]`, false, CodeError{}},
		{`true`, false, CodeError{}},
		{`null`, false, CodeError{}},
		{``, false, CodeError{}},
		{`{"error":"x"`, false, CodeError{}},
		{`{"error":"x"} x`, false, CodeError{}},
	}
	for _, tt := range tests {
		ce, ok := ParseErrorPayload([]byte(tt.payload))
		if ok != tt.ok {
			t.Errorf("%s: ok = %v", tt.payload, ok)
			continue
		}
		if ok && *ce != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.payload, *ce, tt.want)
		}
	}
}

func TestCodeError(t *testing.T) {
	var err error = TimeoutError(100 * time.Millisecond)
	if err.Error() != "Command timed out after 100ms." {
		t.Fatalf("message %q", err.Error())
	}
	var ce *CodeError
	if !errors.As(fmt.Errorf("wrap: %w", err), &ce) || ce.Code != CodeTimeout || ce.Name != NameTimeoutError {
		t.Fatalf("errors.As: %+v", ce)
	}
}

// asError converts itself to a CodeError through an As method, which
// errors.As honours and so must AppendErrorPayload.
type asError struct{}

func (asError) Error() string { return "as error" }

func (asError) As(target any) bool {
	if p, ok := target.(**CodeError); ok {
		*p = NewCodeError("via As", "EAS", "AsError")
		return true
	}
	return false
}
