// Package redact hides protected health information from readers who may
// not see it (the analyst role): content flagged isPHI or isRestricted,
// decisions' medInfo, answers to questions flagged isPHI, and contact phone
// numbers and e-mail addresses, which are masked rather than removed so that
// a reader can still tell two contacts apart at a glance.
package redact

import (
	"bytes"
	"encoding/json"
	"strings"
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
				t[k] = maskScalar(lk, walk(child, k))
			}
		}
		return t
	case []any:
		for i, child := range t {
			t[i] = walk(child, key)
		}
		return t
	}
	return v
}

func maskScalar(lowerKey string, v any) any {
	s, ok := v.(string)
	if !ok || s == "" {
		return v
	}
	switch {
	case strings.Contains(lowerKey, "phone"), lowerKey == "customeridentifier", lowerKey == "ani", lowerKey == "callerid":
		return Phone(s)
	case strings.Contains(lowerKey, "email"):
		return Email(s)
	}
	return v
}

func isTrue(v any) bool {
	b, ok := v.(bool)
	return ok && b
}
