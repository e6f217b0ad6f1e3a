package ingest

import (
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// bodyText returns the body as UTF-8 for decoding; the raw body is stored
// as it came either way. JSON is UTF-8 (RFC 8259, which gives
// application/json no charset parameter), and a body that is valid UTF-8
// is read so whatever charset the Content-Type names: clients label UTF-8
// as ISO-8859-1 by default more often than they send Latin-1. A body that
// is not valid UTF-8 is decoded from the charset its Content-Type names,
// if that is one of the Encoding Standard's (ISO-8859-1 and windows-1252,
// the other ISO-8859 and windows code pages, KOI8, Shift_JIS, EUC, GB18030,
// Big5, UTF-16); UTF-16, whose ASCII is valid UTF-8 with NUL bytes, always
// is. Without a charset, or with UTF-8, the body is read as UTF-8 and what
// is not is replaced (the indexed copy is then marked lossy).
//
// A charset it cannot decode is an *Error with 415 naming it, rather than a
// body read as something it is not.
func bodyText(contentType string, body []byte) ([]byte, error) {
	label := charsetParam(contentType)
	if label == "" || strings.EqualFold(label, "utf-8") || strings.EqualFold(label, "utf8") {
		return body, nil
	}
	enc, err := htmlindex.Get(label)
	var name string
	if err == nil {
		name, _ = htmlindex.Name(enc)
	}
	// "replacement" stands for charsets the Encoding Standard refuses to
	// decode (ISO-2022-KR, HZ-GB-2312): it would turn the body into one U+FFFD.
	if err != nil || name == "replacement" {
		if utf8.Valid(body) {
			return body, nil
		}
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Cause: "unsupported_charset",
			Detail: fmt.Sprintf("the body is not UTF-8 and its Content-Type names charset %q, which casetrail cannot decode; send UTF-8 JSON", clipLabel(label))}
	}
	if name == "utf-8" || (utf8.Valid(body) && !strings.HasPrefix(name, "utf-16")) {
		return body, nil
	}
	text, err := enc.NewDecoder().Bytes(body)
	if err != nil {
		return nil, &Error{Status: http.StatusUnsupportedMediaType, Cause: "unsupported_charset",
			Detail: fmt.Sprintf("the body could not be decoded as charset %q", clipLabel(label))}
	}
	return text, nil
}

// charsetParam returns the charset parameter of a Content-Type value, ""
// when there is none, without allocating: every request passes here.
func charsetParam(ct string) string {
	for {
		i := strings.IndexByte(ct, ';')
		if i < 0 {
			return ""
		}
		ct = ct[i+1:]
		param := ct
		if j := strings.IndexByte(param, ';'); j >= 0 {
			param = param[:j]
		}
		name, val, ok := strings.Cut(param, "=")
		if ok && strings.EqualFold(strings.TrimSpace(name), "charset") {
			return strings.Trim(strings.TrimSpace(val), `"`)
		}
	}
}

func clipLabel(s string) string {
	if len(s) > 40 || !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s[:min(len(s), 40)], "?") + "…"
	}
	return s
}
