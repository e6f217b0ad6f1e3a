package redact

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTextMasksPhones writes an E.164 phone number into any text, standing
// alone between spaces, compact or in groups ("+44 7700 900123"), and holds Text to what the redacted views rely on:
// no panic, valid UTF-8 in, valid UTF-8 out, and the number's digits never
// shown, whatever text surrounds it.
func FuzzTextMasksPhones(f *testing.F) {
	for _, s := range []struct {
		before string
		number uint64
		after  string
	}{
		{"Abandoned conversation from", 447700900123, "in queue Sales"},
		{"Call back", 14155550100, "tomorrow"},
		{"ann.lee@example.com called from", 390612345678, "(mobile)"},
		{"Outbound call to", 74951234567, "lasted 00:01:30"},
		{"", 447700900123, ""},
	} {
		f.Add(s.before, s.number, s.after, false)
		f.Add(s.before, s.number, s.after, true)
	}
	f.Fuzz(func(t *testing.T, before string, number uint64, after string, grouped bool) {
		digits := strconv.FormatUint(number, 10)
		if len(digits) < 8 || len(digits) > 15 {
			return
		}
		phone := "+" + digits
		if grouped {
			phone = "+" + digits[:2] + " " + digits[2:6] + " " + digits[6:]
		}
		s := before + " " + phone + " " + after
		got := Text(s)
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Text(%q) = %q: not UTF-8", s, got)
		}
		if strings.Contains(got, phone) {
			t.Fatalf("Text(%q) = %q shows the number", s, got)
		}
	})
}
