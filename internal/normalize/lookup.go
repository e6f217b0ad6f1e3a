package normalize

import (
	"strings"
	"unicode/utf8"
)

// maxKeyLen bounds every extracted identifier. The store indexes these
// columns, and a btree entry over ~2.7 kB makes the insert fail; an "id" that
// long is not an id anyway, so it is treated as absent.
const maxKeyLen = 200

// Field names are matched loosely everywhere: case-insensitive and ignoring
// these separators, so "Time in queue", "time_in_queue" and "timeInQueue" are
// one name. Alias tables below are written in that folded form.
func isKeySeparator(c byte) bool {
	switch c {
	case ' ', '_', '-', '.', '(', ')':
		return true
	}
	return false
}

// keyMatches reports whether key folds to norm, without allocating.
func keyMatches(key, norm string) bool {
	j := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		if isKeySeparator(c) {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if j >= len(norm) || norm[j] != c {
			return false
		}
		j++
	}
	return j == len(norm)
}

// FoldKey returns key in the folded form of the alias tables: lower case,
// without separators. Other packages use it to compare member names the way
// the decoders do.
func FoldKey(key string) string {
	var b strings.Builder
	b.Grow(len(key))
	for i := 0; i < len(key); i++ {
		c := key[i]
		if isKeySeparator(c) {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// indexFrom is the object size above which lookups go through a map.
const indexFrom = 32

// maxNested bounds how many wrapper objects a lenient lookup searches.
const maxNested = 16

// get returns the member value of an object whose key folds to one of names,
// preferring earlier names; nil when v is not an object or nothing matches.
func (v *value) get(names ...string) *value {
	if v == nil || v.kind != kindObject {
		return nil
	}
	if len(v.members) > indexFrom {
		if v.folded == nil {
			v.folded = make(map[string]int, len(v.members))
			for i := len(v.members) - 1; i >= 0; i-- {
				v.folded[FoldKey(v.members[i].key)] = i
			}
		}
		for _, n := range names {
			if i, ok := v.folded[n]; ok {
				return &v.members[i].val
			}
		}
		return nil
	}
	for _, n := range names {
		for i := range v.members {
			if keyMatches(v.members[i].key, n) {
				return &v.members[i].val
			}
		}
	}
	return nil
}

// obj returns the first of the named members that is an object: one
// named earlier but holding something else (a case's "escalated": false
// beside the "payment" an event carries) does not hide it.
func (v *value) obj(names ...string) *value {
	for _, n := range names {
		if m := v.get(n); m != nil && m.kind == kindObject {
			return m
		}
	}
	return nil
}

// str returns the named member as an identifier-like string: strings are
// trimmed, numbers give their text, anything else (or too long) gives "".
func (v *value) str(names ...string) string {
	for _, n := range names {
		if s := scalarText(v.get(n)); s != "" {
			return s
		}
	}
	return ""
}

func scalarText(m *value) string {
	if m == nil {
		return ""
	}
	var s string
	switch m.kind {
	case kindString:
		s = strings.TrimSpace(m.text)
	case kindNumber:
		s = m.text
	default:
		return ""
	}
	if len(s) > maxKeyLen {
		return ""
	}
	return s
}

// flag returns the named member as a bool, accepting the strings "true"
// and "false" that loosely typed senders write.
func (v *value) flag(names ...string) *bool {
	m := v.get(names...)
	if m == nil {
		return nil
	}
	var b bool
	switch {
	case m.kind == kindBool:
		b = m.boolean
	case m.kind == kindString && strings.EqualFold(strings.TrimSpace(m.text), "true"):
		b = true
	case m.kind == kindString && strings.EqualFold(strings.TrimSpace(m.text), "false"):
		b = false
	default:
		return nil
	}
	return &b
}

// nested returns the objects one level below v, skipping members whose key
// folds to one of skip. Lenient lookups search v first and then these, so
// payloads wrapped in "data" or "conversation" are found too.
func (v *value) nested(skip ...string) []*value {
	if v == nil || v.kind != kindObject {
		return nil
	}
	var out []*value
	for i := range v.members {
		m := &v.members[i]
		if m.val.kind != kindObject {
			continue
		}
		excluded := false
		for _, s := range skip {
			if keyMatches(m.key, s) {
				excluded = true
				break
			}
		}
		if !excluded {
			out = append(out, &m.val)
			if len(out) == maxNested {
				break
			}
		}
	}
	return out
}

// clip shortens s for a one-line summary, keeping whole runes and replacing
// line breaks and other control characters by spaces.
func clip(s string, n int) string {
	s = strings.TrimSpace(s)
	clean := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		s = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, s)
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, count := 0, 0
	for i = range s {
		if count == n {
			break
		}
		count++
	}
	return strings.TrimSpace(s[:i]) + "…"
}
