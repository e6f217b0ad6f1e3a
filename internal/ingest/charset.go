package ingest

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// bodyText returns the body as UTF-8 for decoding, and whether that text
// is not all the sender meant (lossy); the raw body is stored as it came
// either way. JSON is UTF-8 (RFC 8259, which gives application/json no
// charset parameter), and a body that is valid UTF-8 is read so whatever
// charset the Content-Type names: clients label UTF-8 as ISO-8859-1 by
// default more often than they send Latin-1. A body that is not valid
// UTF-8 is decoded from the charset its Content-Type names, if that is one
// of the Encoding Standard's (ISO-8859-1 and windows-1252, the other
// ISO-8859 and windows code pages, KOI8, Shift_JIS, EUC, GB18030, Big5,
// UTF-16); UTF-16, whose ASCII is valid UTF-8 with NUL bytes, always is.
// Bytes the charset does not define become U+FFFD, and the text is lossy.
//
// Without a charset, with UTF-8, or with one casetrail cannot decode, the
// body is read as UTF-8: what is not is replaced and the indexed copy
// marked lossy (normalize.Decode). The event is stored all the same: a
// charset label is no reason to keep a delivery out of the log.
func bodyText(contentType string, body []byte) (text []byte, lossy bool) {
	label := charsetParam(contentType)
	if label == "" || strings.EqualFold(label, "utf-8") || strings.EqualFold(label, "utf8") {
		return body, false
	}
	enc, err := htmlindex.Get(label)
	if err != nil {
		return body, false
	}
	// "replacement" stands for charsets the Encoding Standard refuses to
	// decode (ISO-2022-KR, HZ-GB-2312): it would turn the body into one U+FFFD.
	name, _ := htmlindex.Name(enc)
	if name == "replacement" || name == "utf-8" || (utf8.Valid(body) && !strings.HasPrefix(name, "utf-16")) {
		return body, false
	}
	// A byte order mark decides, as in the Encoding Standard's decode: a
	// body labelled utf-16 that starts with FE FF is big-endian (as Java's
	// "UTF-16" writes it), whatever the label's default.
	text, _, err = transform.Bytes(unicode.BOMOverride(enc.NewDecoder()), body)
	if err != nil {
		return body, false
	}
	return text, bytes.ContainsRune(text, utf8.RuneError)
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
