// Package redact hides protected health information from readers who may
// not see it (the analyst and admin roles): content flagged isPHI or
// isRestricted, decisions' medInfo, answers to questions flagged isPHI, and
// contact phone numbers and e-mail addresses, which are masked rather than
// removed so that a reader can still tell two contacts apart at a glance.
package redact

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/casetrail/casetrail/internal/normalize"
)

// Redacted replaces hidden values.
const Redacted = "[redacted]"

// Phone masks all but a short prefix and the last three digits:
// +447700900123 -> +44*******123.
func Phone(s string) string {
	if len(s) <= 6 {
		return strings.Repeat("*", len(s))
	}
	return s[:3] + strings.Repeat("*", len(s)-6) + s[len(s)-3:]
}

// Email keeps the first letter and the domain: ann.lee@example.com ->
// a*******@example.com.
func Email(s string) string {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 {
		return strings.Repeat("*", len(s))
	}
	return s[:1] + strings.Repeat("*", at-1) + s[at:]
}

// flaggedFields are the values hidden in an object flagged isPHI or
// isRestricted.
var flaggedFields = map[string]bool{
	"text": true, "content": true, "filename": true, "description": true,
	"decisiontext": true, "notes": true, "message": true,
}

// Document returns doc (an indexed JSON document) with PHI redacted. A
// document that cannot be parsed is withheld entirely.
func Document(doc []byte) []byte {
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
	out, err := json.Marshal(walk(v, ""))
	if err != nil {
		out, _ = json.Marshal(Redacted)
	}
	return out
}

func walk(v any, key string) any {
	switch t := v.(type) {
	case map[string]any:
		flagged := isTrue(t["isPHI"]) || isTrue(t["isRestricted"])
		if key == "question" {
			// The question's flag protects the answer (its parent's text),
			// not the question's own wording.
			flagged = false
		}
		if q, ok := t["question"].(map[string]any); ok && isTrue(q["isPHI"]) {
			if _, ok := t["text"]; ok {
				t["text"] = Redacted
			}
		}
		for k, child := range t {
			lk := strings.ToLower(k)
			switch {
			case lk == "medinfo":
				t[k] = Redacted
			case flagged && flaggedFields[lk]:
				t[k] = Redacted
			default:
				t[k] = walk(child, k)
			}
		}
		return t
	case []any:
		// A list under a phone or e-mail key is masked item by item.
		for i, child := range t {
			t[i] = walk(child, key)
		}
		return t
	}
	return maskScalar(key, v)
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

// maskScalar masks a string or number under a phone or e-mail key. Numbers
// count because senders write phone numbers as JSON numbers, and the
// normaliser reads them.
func maskScalar(key string, v any) any {
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
	fk := normalize.FoldKey(key)
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
	}
	return v
}

func isTrue(v any) bool {
	b, ok := v.(bool)
	return ok && b
}
