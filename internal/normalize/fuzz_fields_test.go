package normalize

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseTime holds the time parser to what Decode relies on: no panic,
// and a time only when the text names its instant. A returned time is UTC,
// between 1971 and 9999, and for a date and time written out it shows, in
// the offset the text gives (UTC when it gives none, or names UTC or GMT),
// the same date and clock as the text: a zone name alone, which could mean
// several offsets, never yields a time.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		// As the senders' documents write them (seeds 002 and 003).
		"2022-03-08T07:39:47.6052457Z", "2022-03-08T07:41:47.6052457Z", "2022-03-08",
		"1715679667", "1715679667123", "1715679667123456", "1715679667123456789",
		"1715679667.5", "/Date(1715679667000)/", "/Date(1715679667123+0200)/",
		"2024-05-14T11:41:07+02:00", "2024-05-14T11:41:07+0200", "2024-05-14T11:41:07+02",
		"2024-05-14 09:41:07,5+01:00", "2024-05-14T09:41", "2024-05-14 09:41:07 UTC",
		"2024-05-14 11:41:07 +0200 CEST", "2024-05-14 09:41:07.6052457 +0000 UTC",
		"2024-05-14 09:41:07 EST", "2024-05-14 09:41:07 +0200 UTC",
		"Tue, 14 May 2024 09:41:07 GMT", "Tue, 14 May 2024 11:41:07 +0200",
		"Tue, 14 May 2024 09:41:07 EST", "9999-12-31T23:59:59-23:59", "1971-01-01T00:00:00+00:01",
	} {
		f.Add(s, false)
	}
	for _, n := range []string{"1715679667", "1.715679667e9", "1715679667123.5", "-1", "1e400", "0.0"} {
		f.Add(n, true)
	}
	f.Fuzz(func(t *testing.T, text string, number bool) {
		v := &value{kind: kindString, text: text}
		if number {
			v.kind = kindNumber
		}
		got := parseTime(v)
		if got == nil {
			return
		}
		if got.Location() != time.UTC || got.Unix() < minEpochSeconds || got.Year() > maxYear {
			t.Fatalf("parseTime(%q) = %v: not a plausible UTC time", text, got)
		}
		if number {
			return
		}
		s := strings.TrimSpace(text)
		var date, clock, rest string
		switch {
		case len(s) >= 16 && s[4] == '-' && s[13] == ':':
			date, clock, rest = s[:10], s[11:16], s[16:]
		case len(s) >= 29 && s[3] == ',':
			// Go reads a run of spaces as one, and an hour of one digit.
			f := strings.Fields(s)
			if len(f) < 6 {
				t.Fatalf("parseTime(%q) = %v from too few fields", text, got)
			}
			date, clock, rest = strings.Join(f[1:4], " "), f[4], strings.Join(f[5:], " ")
		default:
			return // a bare date, or a number of seconds since the epoch
		}
		off, ok := statedOffset(rest)
		if !ok {
			t.Fatalf("parseTime(%q) = %v, but the text states no offset", text, got)
		}
		l := got.In(time.FixedZone("", off))
		if want := l.Format("2006-01-02"); len(date) == 10 && date != want ||
			len(date) != 10 && !strings.EqualFold(date, l.Format("2 Jan 2006")) && !strings.EqualFold(date, l.Format("02 Jan 2006")) {
			t.Fatalf("parseTime(%q) = %v, which at offset %ds is %s", text, got, off, l)
		}
		h, m, _ := strings.Cut(clock, ":")
		if hh, _ := strconv.Atoi(h); hh != l.Hour() || len(m) < 2 || m[:2] != l.Format("04") {
			t.Fatalf("parseTime(%q) = %v, which at offset %ds is %s", text, got, off, l)
		}
	})
}

// statedOffset finds the offset what follows the clock states, in seconds:
// a signed number of hours, with or without minutes, or 0 when it names
// none or names UTC or GMT. It reports false when it names another zone
// without giving an offset.
func statedOffset(rest string) (int, bool) {
	if i := strings.LastIndexAny(rest, "+-"); i >= 0 {
		digits := ""
		for _, c := range rest[i+1:] {
			if '0' <= c && c <= '9' {
				digits += string(c)
			} else if c != ':' {
				break
			}
		}
		if len(digits) == 2 || len(digits) == 4 {
			h, _ := strconv.Atoi(digits[:2])
			m := 0
			if len(digits) == 4 {
				m, _ = strconv.Atoi(digits[2:])
			}
			off := h*3600 + m*60
			if rest[i] == '-' {
				off = -off
			}
			return off, true
		}
	}
	var letters strings.Builder
	for _, c := range rest {
		if 'a' <= c|0x20 && c|0x20 <= 'z' {
			letters.WriteRune(c)
		}
	}
	switch strings.ToUpper(letters.String()) {
	case "", "Z", "UTC", "GMT":
		return 0, true
	}
	return 0, false
}

// FuzzNormalizePhone holds NormalizePhone to its contract: no panic; a
// result that is "+" and 8 to 15 digits not starting with 0; normalising a
// normalised number, under any default code, gives it back; and whatever
// any code accepts, MayBePhone, which tells the read views what to mask,
// accepts too.
func FuzzNormalizePhone(f *testing.F) {
	for _, s := range []string{
		"+123456789", "638858857", "+44 (0)7700 900123", "0044 (0)7700 900123", "tel:+1-415-555-0100",
		"07700 900123", "(415) 555-0100", "011 44 7700 900123", "8 (912) 345-67-89", "810 44 7700 900123",
		"8 029 123 45 67", "06 1234 5678", "+39 (0)6 1234 5678", "  +44 7700\u00a0900123 ", "user@example.com",
	} {
		for _, cc := range []string{"", "44", "1", "7", "375", "39", "+49"} {
			f.Add(s, cc)
		}
	}
	f.Fuzz(func(t *testing.T, raw, cc string) {
		p, ok := NormalizePhone(raw, cc)
		if !ok {
			if p != "" {
				t.Fatalf("NormalizePhone(%q, %q) refused but returned %q", raw, cc, p)
			}
			return
		}
		if len(p) < 9 || len(p) > 16 || p[0] != '+' || p[1] == '0' || !isDigits(p[1:]) {
			t.Fatalf("NormalizePhone(%q, %q) = %q: not E.164", raw, cc, p)
		}
		for _, other := range []string{cc, "", "1", "7", "44", "39", "375"} {
			if again, ok := NormalizePhone(p, other); !ok || again != p {
				t.Fatalf("NormalizePhone(%q, %q) = %q, %v; want it back", p, other, again, ok)
			}
		}
		if !MayBePhone(raw) {
			t.Fatalf("NormalizePhone(%q, %q) = %q, but MayBePhone refuses it", raw, cc, p)
		}
	})
}

// FuzzParseQueueTime: no panic, and a time in queue only from zero to the
// ceiling, whatever the text.
func FuzzParseQueueTime(f *testing.F) {
	for _, s := range []string{
		"42", "42.5", "1500ms", "1m30s", "2 minutes 5 seconds", "PT1H2M3.5S", "P0DT0H1M30S", "P1W",
		"00:01:30.25", "1.02:03:04", "90:00", "1500ms", "-5", "PT", "p1y",
	} {
		f.Add(s, int64(0))
		f.Add(s, int64(time.Millisecond))
	}
	f.Fuzz(func(t *testing.T, raw string, bare int64) {
		d, ok := ParseQueueTime(raw, time.Duration(bare))
		if ok && (d < 0 || d > maxQueueTime) {
			t.Fatalf("ParseQueueTime(%q, %d) = %v", raw, bare, d)
		}
	})
}
