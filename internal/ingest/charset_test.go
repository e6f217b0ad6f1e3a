package ingest

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzBodyText holds bodyText to what decoding relies on, whatever the
// Content-Type: no panic; the body itself back when it names no charset,
// UTF-8, or one that cannot be decoded, or when the body is already UTF-8
// (and not UTF-16); otherwise valid UTF-8, marked lossy exactly when a
// byte did not decode (U+FFFD). The body given is never changed.
func FuzzBodyText(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"event":"CREATE_CASE"}`},
		{"application/json; charset=utf-8", `{"a":"Zoë"}`},
		{"application/json; charset=ISO-8859-1", "{\"a\":\"Zo\xeb\"}"},
		{`application/json ; Charset="latin1"`, "{\"a\":\"Zo\xeb\"}"},
		{"application/json; charset=windows-1252", "{\"a\":\"O\x92Neil\"}"},
		{"application/json; charset=UTF-16LE", "{\x00}\x00"},
		{"application/json; charset=utf-16", "\xff\xfe{\x00}\x00"},
		{"application/json; charset=UTF-16BE", "\x00{\x00}\xd8"},
		{"application/json; charset=Shift_JIS", "{\"a\":\"\x81\x7f\"}"},
		{"application/json; charset=ISO-2022-KR", "\xff"},
		{"application/json; charset=ISO-2022-JP", "\x1b$B\x30\x21\x1b(B"},
		{"application/json; charset=x-user-defined", "\x80\xff"},
		{"application/json; charset=gb18030", "\x84\x31\xa4\x39"},
		{"application/json;charset=", "\xff"},
		{"application/json; foo=bar; charset=koi8-r", "\xf0"},
	} {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		orig := bytes.Clone(body)
		text, lossy := bodyText(contentType, body)
		if !bytes.Equal(body, orig) {
			t.Fatalf("bodyText changed the body it was given")
		}
		label := charsetParam(contentType)
		if strings.Contains(label, ";") {
			t.Fatalf("charsetParam(%q) = %q", contentType, label)
		}
		if len(text) == len(body) && (len(body) == 0 || &text[0] == &body[0]) {
			if lossy {
				t.Fatalf("the body as given is marked lossy")
			}
			return
		}
		if !utf8.Valid(text) {
			t.Fatalf("bodyText(%q, %q) = %q: not UTF-8", contentType, body, text)
		}
		if lossy != bytes.ContainsRune(text, utf8.RuneError) {
			t.Fatalf("bodyText(%q, %q) = %q, lossy %v", contentType, body, text, lossy)
		}
	})
}

// charsetParam runs on every request: it must not allocate.
func TestCharsetParamDoesNotAllocate(t *testing.T) {
	ct := `application/json; boundary=x; Charset="ISO-8859-1"`
	if n := testing.AllocsPerRun(100, func() { _ = charsetParam(ct) }); n != 0 {
		t.Fatalf("charsetParam allocates %v times", n)
	}
	if got := charsetParam(ct); got != "ISO-8859-1" {
		t.Fatalf("charsetParam = %q", got)
	}
}

// A byte order mark decides the byte order, whatever the label: UTF-16
// with FE FF (as Java's "UTF-16" encoder writes it) is big-endian.
func TestBodyTextFollowsTheByteOrderMark(t *testing.T) {
	t.Parallel()
	const doc = `{"agentID":"a-1","name":"Zoë"}`
	be, le := []byte{0xfe, 0xff}, []byte{0xff, 0xfe}
	for _, r := range doc {
		be = append(be, byte(r>>8), byte(r))
		le = append(le, byte(r), byte(r>>8))
	}
	for _, c := range []struct {
		ct   string
		body []byte
	}{
		{"application/json; charset=utf-16", be},
		{"application/json; charset=utf-16", le},
		{"application/json; charset=UTF-16BE", be},
		{"application/json; charset=UTF-16LE", be},
		{"application/json; charset=utf-16le", le},
	} {
		text, lossy := bodyText(c.ct, c.body)
		if string(text) != doc || lossy {
			t.Errorf("bodyText(%q, % x) = %q, lossy %v; want %q", c.ct, c.body[:4], text, lossy, doc)
		}
	}
}
