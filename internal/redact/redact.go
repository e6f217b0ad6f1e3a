// Package redact hides protected health information from readers who may
// not see it (the analyst and admin roles): content flagged isPHI or
// isRestricted, decisions' medInfo, answers to questions flagged isPHI, and
// contact phone numbers and e-mail addresses, which are masked rather than
// removed so that a reader can still tell two contacts apart at a glance.
package redact

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/casetrail/casetrail/internal/normalize"
)

// Redacted replaces hidden values.
const Redacted = "[redacted]"

// Phone masks all but a short prefix and the last three digits:
// +447700900123 -> +44*******123.
func Phone(s string) string {
	r := []rune(s)
	if len(r) <= 6 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-6) + string(r[len(r)-3:])
}

// Email keeps the first letter and the domain: ann.lee@example.com ->
// a******@example.com.
func Email(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return strings.Repeat("*", utf8.RuneCountInString(s))
	}
	_, first := utf8.DecodeRuneInString(s)
	return s[:first] + strings.Repeat("*", utf8.RuneCountInString(s[first:at])) + s[at:]
}

// In free text (summaries, changes, log lines) e-mail addresses are found by
// their "@", and phone numbers as runs of digits and the separators people
// write in them, standing alone: a run that touches a letter or digit is part
// of something else, such as the date in "2024-05-01T10:00:00Z".
var (
	emailInText = regexp.MustCompile(`[^\s@()<>\[\],;:"']+@[^\s@()<>\[\],;:"']+`)
	phoneInText = regexp.MustCompile(`\+?\(?\d(?:[ \-./()\x{00A0}]{0,3}\d)+`)
)

// minTextPhoneDigits is how many digits a run in free text needs to be taken
// for a phone number. Subscriber numbers have at least seven; shorter runs
// in a summary are counts, ticket numbers or parts of ids.
const minTextPhoneDigits = 7

// LogText is Text for the server's log lines, whose error messages name
// network addresses: an IPv4 address written with its port
// (192.168.100.200:5432) is left as it is, and the text around it masked as
// Text masks it. A phone number is never written that way; Text, for what
// readers are shown, masks such a run too, since a national number in
// dotted groups (91.123.45.67) reads like an address.
func LogText(s string) string {
	locs := addressInText.FindAllStringIndex(s, -1)
	var b strings.Builder
	last := 0
	for _, l := range locs {
		if !canonicalIPv4(s[l[0]:strings.LastIndexByte(s[:l[1]], ':')]) || touchesWord(s, l[0], l[1]) || !apart(s, l[0], l[1]) {
			continue
		}
		b.WriteString(Text(s[last:l[0]]))
		b.WriteString(s[l[0]:l[1]])
		last = l[1]
	}
	if last == 0 {
		return Text(s)
	}
	b.WriteString(Text(s[last:]))
	return b.String()
}

// apart reports whether s[start:end] stands apart from what could make it
// part of an e-mail address or of a phone number written around it: no
// "@" beside it, and no digit as the nearest character past the spaces on
// either side ("07700 10.0.0.1:5432 900123" is left to Text).
func apart(s string, start, end int) bool {
	if start > 0 && s[start-1] == '@' || end < len(s) && s[end] == '@' {
		return false
	}
	before := strings.TrimRight(s[:start], " ")
	after := strings.TrimLeft(s[end:], " ")
	return (before == "" || !isDigit(before[len(before)-1])) && (after == "" || !isDigit(after[0]))
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

var addressInText = regexp.MustCompile(`\d{1,3}(?:\.\d{1,3}){3}:\d{1,5}`)

// canonicalIPv4 reports whether s is an IPv4 address in its canonical form:
// four numbers up to 255, without leading zeros.
func canonicalIPv4(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return false
	}
	for _, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n > 255 || p != strconv.Itoa(n) {
			return false
		}
	}
	return true
}

// Text masks the e-mail addresses and phone numbers in free text, each as
// Email and Phone mask them elsewhere.
func Text(s string) string {
	hasAt := strings.IndexByte(s, '@') >= 0
	if !hasAt && countDigits(s) < minTextPhoneDigits {
		return s // no e-mail, and too few digits for any phone number
	}
	if hasAt {
		s = emailInText.ReplaceAllStringFunc(s, Email)
	}
	locs := phoneInText.FindAllStringIndex(s, -1)
	if locs == nil {
		return s
	}
	var b strings.Builder
	last := 0
	mask := func(start, end int) {
		b.WriteString(s[last:start])
		b.WriteString(Phone(s[start:end]))
		last = end
	}
	for _, l := range locs {
		start, end := l[0], l[1]
		if phoneAt(s, start, end) {
			mask(start, end)
			continue
		}
		// A number written before or after other digits with only a space
		// between ("+447700900123 2024-05-01", "+447700900123 2nd try")
		// is read in one run with them, which as a whole is no phone
		// number: its parts between spaces are tried, longest first.
		for i := start; i < end; i = nextPart(s, i, end) {
			for j := min(end, i+maxPhoneText); j > i; j-- {
				if (j == end || isSpaceAt(s, j)) && !isSpaceBefore(s, j) && phoneAt(s, i, j) {
					mask(i, j)
					i = j
					break
				}
			}
		}
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// maxPhoneText is the longest text NormalizePhone reads as a number.
const maxPhoneText = 64

// phoneAt reports whether s[start:end], a run phoneInText matched or a
// part of one, is a phone number standing alone.
func phoneAt(s string, start, end int) bool {
	run := s[start:end]
	return !touchesWord(s, start, end) && countDigits(run) >= minTextPhoneDigits && normalize.MayBePhone(run)
}

// isSpaceAt and isSpaceBefore report whether a space (or a no-break
// space) starts at, or ends at, byte i of s.
func isSpaceAt(s string, i int) bool {
	return s[i] == ' ' || strings.HasPrefix(s[i:], "\u00a0")
}

func isSpaceBefore(s string, i int) bool {
	return s[i-1] == ' ' || strings.HasSuffix(s[:i], "\u00a0")
}

// nextPart returns where the part of s[:end] after the one at i starts:
// after the next run of spaces, or end.
func nextPart(s string, i, end int) int {
	for i < end && !isSpaceAt(s, i) {
		i++
	}
	for i < end && isSpaceAt(s, i) {
		if s[i] == ' ' {
			i++
		} else {
			i += len("\u00a0")
		}
	}
	return i
}

// TextIn applies Text to every string in a JSON document, such as an
// event's changes. A document that cannot be parsed is withheld.
func TextIn(doc []byte) []byte { return rewrite(doc, TextValue) }

// rewrite returns doc, a JSON document, with f applied to its parsed value;
// a document that cannot be parsed or written back is withheld entirely.
func rewrite(doc []byte, f func(any) any) []byte {
	if len(doc) == 0 {
		return doc
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		out, _ := json.Marshal(Redacted)
		return out
	}
	out, err := json.Marshal(f(v))
	if err != nil {
		out, _ = json.Marshal(Redacted)
	}
	return out
}

// TextValue applies Text to every string in a parsed JSON value, in place.
func TextValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			t[k] = TextValue(child)
		}
	case []any:
		for i, child := range t {
			t[i] = TextValue(child)
		}
	case string:
		return Text(t)
	}
	return v
}

// touchesWord reports whether s[start:end] continues a word or number on
// either side.
func touchesWord(s string, start, end int) bool {
	isWord := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '+' }
	if start > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s[:start]); isWord(r) {
			return true
		}
	}
	if end < len(s) {
		if r, _ := utf8.DecodeRuneInString(s[end:]); isWord(r) {
			return true
		}
	}
	return false
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			n++
		}
	}
	return n
}

// flaggedFields are the values hidden in an object flagged isPHI or
// isRestricted, and in every object inside it (folded names), also under
// a longer name ending in one ("commentText", "htmlBody"). A link may be
// a flagged attachment itself, and its path names the file.
var flaggedFields = []string{
	"text", "content", "filename", "description", "notes", "note", "message",
	"body", "comment", "subject", "answer", "url", "link",
}

// flaggedField reports whether a member of a flagged object (fk, folded) is
// hidden.
func flaggedField(fk string) bool {
	for _, f := range flaggedFields {
		if strings.HasSuffix(fk, f) {
			return true
		}
	}
	return false
}

// Document returns doc (an indexed JSON document) with PHI redacted. A
// document that cannot be parsed is withheld entirely.
func Document(doc []byte) []byte {
	return rewrite(doc, func(v any) any { return walk(v, "", "", false) })
}

// walk redacts v, the value of member key (fk, folded as the normaliser
// folds names), inside an object flagged as PHI when inFlagged: a
// restricted comment's attachments are restricted with it.
func walk(v any, key, fk string, inFlagged bool) any {
	switch t := v.(type) {
	case map[string]any:
		// The question's flag protects the answer (its parent's text),
		// not the question's own wording.
		flagged := inFlagged || fk != "question" && flags(t)
		answered := phiQuestion(t)
		for k, child := range t {
			lk := normalize.FoldKey(k)
			switch {
			case lk == "medinfo", answered && lk != "question" && (flaggedField(lk) || lk == "answers"):
				t[k] = Redacted
			case flagged && flaggedField(lk) && (strings.HasSuffix(lk, "content") || !isContainer(child)):
				// An attachment's content goes whole, its reference too:
				// the SHA-256 of a known document would confirm a guess.
				t[k] = Redacted
			case flagged && flaggedField(lk) && !strings.HasSuffix(lk, "comment"):
				// Text sent as an object or a list ({"html": ..., "plain":
				// ...}) is text under whatever names it has. A comment
				// object is a comment, whose author and flags stay.
				t[k] = hideText(child, lk)
			default:
				t[k] = walk(child, k, lk, flagged)
			}
		}
		return t
	case []any:
		// A list under a phone or e-mail key is masked item by item.
		for i, child := range t {
			t[i] = walk(child, key, fk, inFlagged)
		}
		return t
	}
	return maskScalar(fk, v)
}

// flags reports whether an object is flagged isPHI or isRestricted, the
// names matched as the normaliser matches names (IsPHI, is_restricted) and
// the flag written as true, "true" or 1: a flag a sender spells otherwise
// must not show what it protects.
func flags(m map[string]any) bool {
	for k, v := range m {
		if fk := normalize.FoldKey(k); fk == "isphi" || fk == "isrestricted" {
			if isTrue(v) {
				return true
			}
		}
	}
	return false
}

// hideText hides every string in v, the object or list under a flagged
// field (fk, folded), but ids and dates.
func hideText(v any, fk string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			t[k] = hideText(child, normalize.FoldKey(k))
		}
	case []any:
		for i, child := range t {
			t[i] = hideText(child, fk)
		}
	case string:
		if !idOrDate(fk) {
			return Redacted
		}
	}
	return v
}

// idOrDate reports whether a member's name (folded) is that of an id or a
// date: "id", "commentId", "createdAt", "dueDate", "timestamp".
func idOrDate(fk string) bool {
	for _, suffix := range []string{"id", "edat", "date", "time", "timestamp"} {
		if strings.HasSuffix(fk, suffix) {
			return true
		}
	}
	return false
}

// phiQuestion reports whether m, a form response, answers a question
// flagged isPHI, the names matched as flags matches them ("Question").
func phiQuestion(m map[string]any) bool {
	for k, v := range m {
		if q, ok := v.(map[string]any); ok && normalize.FoldKey(k) == "question" && flags(q) {
			return true
		}
	}
	return false
}

// phoneKeys are the member names the normaliser reads a phone number from,
// folded. Their values are masked wherever they appear in a document, in
// every event kind: a phone number under one of these names is PHI even in
// a payload whose own kind does not correlate by it.
var phoneKeys = func() map[string]bool {
	m := map[string]bool{}
	for _, k := range normalize.PhoneKeys() {
		m[k] = true
	}
	return m
}()

// genericPhoneKeys are the aliases that are ordinary words as well: a
// contact-center hook's "from", "to", "target", "destination" and "number"
// are phone numbers, but elsewhere the same names hold statuses ("to":
// "Resolved"), dates or a ticket's "number": 42. Masking every value under
// them would hide those from analysts for nothing, and masking only in the
// kinds that read them would miss a phone number sent under "to" by an event
// the normaliser does not know. So under these names a value is masked when
// it could be a phone number at all, that is, when the normaliser would
// accept it under some default country code (normalize.MayBePhone). That
// errs towards masking: a plain date such as "2024-05-01" under "to" is
// masked too, which is the cheaper mistake.
var genericPhoneKeys = map[string]bool{
	"from": true, "to": true, "target": true, "destination": true, "number": true,
}

// ID masks a correlation id (a customer, conversation, agent or work item
// id) as a value under any name in a document is masked: an e-mail
// address, or a number written internationally.
func ID(s string) string {
	switch {
	case isEmail(s):
		return Email(s)
	case strings.HasPrefix(strings.TrimSpace(s), "+") && normalize.MayBePhone(s):
		return Phone(s)
	}
	return s
}

// isEmail reports whether s is, as a whole, one e-mail address.
func isEmail(s string) bool {
	return strings.IndexByte(s, '@') > 0 && emailInText.FindString(s) == s
}

// maskScalar masks a string or number under a phone or e-mail key (fk,
// folded). Numbers count because senders write phone numbers as JSON
// numbers, and the normaliser reads them.
func maskScalar(fk string, v any) any {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case json.Number:
		s = string(t)
	default:
		return v
	}
	if s == "" {
		return v
	}
	switch {
	case genericPhoneKeys[fk]:
		if normalize.MayBePhone(s) {
			return Phone(s)
		}
	case fk == "customeridentifier" && strings.Contains(s, "@"):
		// A web chat's customer identifier is an e-mail address.
		return Email(s)
	case phoneKeys[fk], strings.Contains(fk, "phone"), strings.Contains(fk, "msisdn"):
		return Phone(s)
	case strings.Contains(fk, "email"):
		return Email(s)
	case (strings.Contains(fk, "mobile") || strings.HasPrefix(strings.TrimSpace(s), "+")) && normalize.MayBePhone(s):
		// A mobile's number, or a number written internationally under
		// any name: a "caller", a participant's "address".
		return Phone(s)
	case isEmail(s):
		// An e-mail address under any name: a customer id, a "createdBy".
		return Email(s)
	}
	return v
}

// isContainer reports whether v is an object or a list, which a flag
// hides member by member rather than whole (but for an attachment's
// content), so that ids and dates stay.
func isContainer(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return true
	}
	return false
}

func isTrue(v any) bool {
	switch t := v.(type) {
	case bool:
		return t
	case string:
		return strings.EqualFold(strings.TrimSpace(t), "true") || strings.TrimSpace(t) == "1"
	case json.Number:
		return string(t) == "1"
	}
	return false
}
