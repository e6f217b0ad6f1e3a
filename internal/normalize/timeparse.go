package normalize

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// parseTime reads a timestamp from a JSON value:
//   - strings in RFC 3339 with any offset ("Z", "+01:00", "+0100", "+01"),
//     with "T" or a space between date and time, with or without seconds
//     and fractional seconds of any length; the offset may follow a space
//     and be followed by a zone name, or be the name UTC or GMT alone
//     (see zoneTail); without an offset the time is UTC; a bare date is
//     midnight UTC; RFC 1123 ("Mon, 02 Jan 2006 15:04:05 GMT") too;
//   - .NET's legacy "/Date(1715679667000)/";
//   - numbers, or strings of digits, as Unix epoch seconds, milliseconds,
//     microseconds or nanoseconds told apart by their size (see
//     parseEpoch), fractions allowed.
//
// Anything else, and any time before 1971 or after 9999, is nil: the caller
// then falls back to the receipt time.
func parseTime(v *value) *time.Time {
	if v == nil {
		return nil
	}
	switch v.kind {
	case kindNumber:
		return parseEpoch(v.text)
	case kindString:
		return parseTimeString(v.text)
	}
	return nil
}

func parseTimeString(s string) *time.Time {
	s = strings.TrimSpace(s)
	if len(s) < 4 || len(s) > 64 {
		return nil
	}
	if isDecimal(s) {
		return parseEpoch(s)
	}
	var layout string
	switch {
	case len(s) == 10 && s[4] == '-' && s[7] == '-':
		layout = "2006-01-02"
	case len(s) >= 16 && s[4] == '-' && s[7] == '-' && s[13] == ':':
		switch s[10] {
		case 'T':
		case 't', ' ':
			s = s[:10] + "T" + s[11:]
		default:
			return nil
		}
		i, base := 16, "2006-01-02T15:04"
		if len(s) >= 19 && s[16] == ':' {
			i, base = 19, "2006-01-02T15:04:05"
			// Skip the fraction to see which offset form follows;
			// time.Parse itself accepts a fraction of any length after
			// the seconds.
			if i < len(s) && (s[i] == '.' || s[i] == ',') {
				i++
				for i < len(s) && '0' <= s[i] && s[i] <= '9' {
					i++
				}
			}
		}
		tail, ok := zoneTail(s[i:])
		if !ok {
			return nil
		}
		if tail != s[i:] {
			s = s[:i] + tail
		}
		switch {
		case tail == "":
			layout = base
		case tail == "Z" || len(tail) == 6 && tail[3] == ':':
			layout = base + "Z07:00"
		case len(tail) == 5:
			layout = base + "Z0700"
		case len(tail) == 3:
			layout = base + "Z07"
		default:
			return nil
		}
	case strings.HasPrefix(s, "/Date(") && strings.HasSuffix(s, ")/"):
		return parseDotNetDate(s[len("/Date(") : len(s)-len(")/")])
	case len(s) >= 29 && s[3] == ',':
		// Only zones that name an offset: Go invents a zero offset for
		// abbreviations such as "EST" it does not know.
		switch {
		case strings.HasSuffix(s, " GMT") || strings.HasSuffix(s, " UTC"):
			layout = time.RFC1123
		case s[len(s)-5] == '+' || s[len(s)-5] == '-':
			layout = time.RFC1123Z
		default:
			return nil
		}
	default:
		return nil
	}
	t, err := time.Parse(layout, s)
	if err != nil {
		return plausible(time.Time{})
	}
	return plausible(t)
}

// zoneTail reads what follows the time of day: nothing, "Z", or a numeric
// offset, each possibly after a space, and possibly followed by a zone
// name, as loggers, databases and Go's time.String write it
// ("2024-05-14 09:41:07 UTC", "... +0000 UTC", "... +0200 CEST"). It
// returns the offset alone, "Z" for UTC. A zone name is trusted only when
// it is UTC or GMT, or when an offset is written too, which then decides:
// abbreviations such as "EST" or "IST" name different offsets in different
// places, and guessing one would misdate the event by hours.
func zoneTail(tail string) (string, bool) {
	t := strings.TrimLeft(tail, " ")
	name := ""
	if sp := strings.IndexByte(t, ' '); sp >= 0 {
		t, name = t[:sp], strings.TrimLeft(t[sp+1:], " ")
	} else if len(t) > 1 && isLetters(t) {
		t, name = "", t
	}
	if name == "" {
		if t == "z" {
			t = "Z"
		}
		return t, true
	}
	utc := strings.EqualFold(name, "UTC") || strings.EqualFold(name, "GMT") || name == "Z"
	switch {
	case t == "":
		if utc {
			return "Z", true
		}
		return "", false
	case t[0] != '+' && t[0] != '-':
		return "", false
	case name == t: // Go writes a zone it has no name for as its offset
		return t, true
	case !isLetters(name) || len(name) > 6:
		return "", false
	case utc && strings.Trim(t[1:], "0:") != "":
		return "", false // "+0200 UTC" contradicts itself
	}
	return t, true
}

func isLetters(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return s != ""
}

// parseDotNetDate reads the inside of .NET's legacy JSON date,
// "/Date(1715679667000)/" or "/Date(1715679667000+0200)/": milliseconds
// since the Unix epoch in UTC; the offset that may follow only says where
// the sender was, so it does not change the instant.
func parseDotNetDate(s string) *time.Time {
	ms := s
	if i := strings.LastIndexAny(s, "+-"); i > 0 {
		ms = s[:i]
		if off := s[i+1:]; len(off) != 4 || !isDigits(off) {
			return nil
		}
	}
	if !isDigits(ms) || len(ms) > 15 {
		return nil
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return nil
	}
	return plausible(time.UnixMilli(n))
}

// minEpochSeconds is where timestamps start to mean something: earlier values are
// placeholders for "unset" (.NET's 0001-01-01, Unix 0, small counters), and
// using them would file the event decades before it happened.
const minEpochSeconds = 31536000 // 1971-01-01T00:00:00Z

// maxYear is the last year a time may fall in once in UTC: RFC 3339 and
// Go's JSON write four-digit years only, so a later time would make every
// answer that holds the event unwritable.
const maxYear = 9999

func plausible(t time.Time) *time.Time {
	if t.Unix() < minEpochSeconds || t.UTC().Year() > maxYear {
		return nil
	}
	t = t.UTC()
	return &t
}

// epochDigits maps the number of digits before the point of a Unix time
// from 2001-09-09T01:46:40Z (1e9 seconds) until 2286-11-20T17:46:40Z (1e10
// seconds) to how many of them are below the second: 10 digits are
// seconds, 13 milliseconds, 16 microseconds, 19 nanoseconds. The ranges do
// not overlap, so the size of a number says its unit. Numbers of other
// sizes are not read as times: shorter ones are counts and ids (42, or an
// id of 8 or 9 digits, which as seconds would fall between 1970 and 2001),
// and the sizes in between would be a time before 2001 in the smaller unit
// or after 2286 in the larger, neither of which an event received now has.
var epochDigits = map[int]int{10: 0, 13: 3, 16: 6, 19: 9}

// parseEpoch reads a Unix time from a JSON number or a decimal string,
// without going through a float when it is written in decimal, so that
// microseconds and nanoseconds keep their precision; digits beyond the
// nanosecond are dropped, as time.Parse drops them.
func parseEpoch(text string) *time.Time {
	if !isDecimal(text) {
		// A sign or an exponent ("1.715679667e9").
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f <= 0 {
			return nil
		}
		text = strconv.FormatFloat(f, 'f', -1, 64)
	}
	whole, frac, _ := strings.Cut(text, ".")
	whole = strings.TrimLeft(whole, "0")
	sub, ok := epochDigits[len(whole)]
	if !ok {
		return nil
	}
	split := len(whole) - sub
	sec, err := strconv.ParseInt(whole[:split], 10, 64)
	if err != nil {
		return nil
	}
	ns := whole[split:] + frac
	if len(ns) > 9 {
		ns = ns[:9]
	}
	nsec, err := strconv.ParseInt(ns+strings.Repeat("0", 9-len(ns)), 10, 64)
	if err != nil {
		return nil
	}
	return plausible(time.Unix(sec, nsec))
}

// isDecimal reports whether s is digits with at most one '.' between digits.
func isDecimal(s string) bool {
	dot := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case '0' <= c && c <= '9':
		case c == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return len(s) > 0
}

// maxQueueTime guards against overflow; no queue keeps a caller for years.
const maxQueueTime = 10 * 365 * 24 * time.Hour

// ParseQueueTime parses a time-in-queue value written as text. Accepted forms
// (case-insensitive, surrounding spaces ignored):
//   - a bare decimal number ("42", "42.5"), in bareUnit (time.Second when
//     bareUnit is 0; the caller passes time.Millisecond when the field name
//     says so, e.g. "timeInQueueMs");
//   - numbers with units, optionally spaced and chained: "1500ms", "42s",
//     "42 sec", "1m30s", "2 minutes 5 seconds", "1h"; units are ms, msec,
//     millis, millisecond(s), s, sec(s), second(s), m, min(s), minute(s), h,
//     hr(s), hour(s);
//   - clock forms "mm:ss", "hh:mm:ss" and .NET's "d.hh:mm:ss", with an
//     optional fraction on the seconds ("00:01:30.25");
//   - ISO 8601 durations with days, weeks, hours, minutes and seconds,
//     fractions allowed: "PT1M30S", "PT42.5S", "P0DT0H1M30S" (years and
//     months are refused: their length is ambiguous).
//
// Negative, empty, unparseable or absurd (over ten years) values give false.
func ParseQueueTime(raw string, bareUnit time.Duration) (time.Duration, bool) {
	s := strings.TrimSpace(raw)
	if s == "" || len(s) > 64 {
		return 0, false
	}
	if bareUnit <= 0 {
		bareUnit = time.Second
	}
	s = strings.ToLower(s)
	var d time.Duration
	var ok bool
	switch {
	case s[0] == 'p':
		d, ok = parseISODuration(s[1:])
	case strings.IndexByte(s, ':') >= 0:
		d, ok = parseClock(s)
	case isDecimal(s):
		d, ok = scaled(s, bareUnit)
	default:
		d, ok = parseUnits(s)
	}
	if !ok || d < 0 || d > maxQueueTime {
		return 0, false
	}
	return d, true
}

// scaled returns the decimal number text times unit.
func scaled(num string, unit time.Duration) (time.Duration, bool) {
	intPart, fracPart, _ := strings.Cut(num, ".")
	if intPart == "" {
		intPart = "0"
	}
	if len(intPart) > 15 {
		return 0, false
	}
	n, err := strconv.ParseInt(intPart, 10, 64)
	if err != nil || n > int64(maxQueueTime/unit) {
		return 0, false
	}
	d := time.Duration(n) * unit
	if fracPart != "" {
		if len(fracPart) > 12 {
			fracPart = fracPart[:12]
		}
		f, err := strconv.ParseFloat("0."+fracPart, 64)
		if err != nil {
			return 0, false
		}
		d += time.Duration(math.Round(f * float64(unit)))
	}
	return d, true
}

// takeNumber splits a leading decimal number (digits, optional fraction with
// '.' or ',') off s.
func takeNumber(s string) (num, rest string) {
	i := 0
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	if i > 0 && i+1 < len(s) && (s[i] == '.' || s[i] == ',') && '0' <= s[i+1] && s[i+1] <= '9' {
		j := i + 1
		for j < len(s) && '0' <= s[j] && s[j] <= '9' {
			j++
		}
		return s[:i] + "." + s[i+1:j], s[j:]
	}
	return s[:i], s[i:]
}

func parseISODuration(s string) (time.Duration, bool) {
	var total time.Duration
	inTime, any := false, false
	for s != "" {
		if s[0] == 't' {
			if inTime {
				return 0, false
			}
			inTime = true
			s = s[1:]
			continue
		}
		num, rest := takeNumber(s)
		if num == "" || rest == "" {
			return 0, false
		}
		var unit time.Duration
		switch c := rest[0]; {
		case !inTime && c == 'w':
			unit = 7 * 24 * time.Hour
		case !inTime && c == 'd':
			unit = 24 * time.Hour
		case inTime && c == 'h':
			unit = time.Hour
		case inTime && c == 'm':
			unit = time.Minute
		case inTime && c == 's':
			unit = time.Second
		default:
			return 0, false
		}
		d, ok := scaled(num, unit)
		if !ok {
			return 0, false
		}
		total += d
		any = true
		s = rest[1:]
	}
	return total, any
}

func parseClock(s string) (time.Duration, bool) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, false
	}
	var total time.Duration
	if len(parts) == 3 {
		h := parts[0]
		if days, hours, ok := strings.Cut(h, "."); ok {
			if !isDigits(days) || len(days) > 4 {
				return 0, false
			}
			d, _ := strconv.Atoi(days)
			total += time.Duration(d) * 24 * time.Hour
			h = hours
		}
		if !isDigits(h) || len(h) > 6 {
			return 0, false
		}
		n, _ := strconv.Atoi(h)
		total += time.Duration(n) * time.Hour
		parts = parts[1:]
		if !isDigits(parts[0]) || len(parts[0]) != 2 || parts[0] > "59" {
			return 0, false
		}
	}
	// With two parts the first is minutes and may exceed 59 ("90:00").
	if !isDigits(parts[0]) || len(parts[0]) > 8 {
		return 0, false
	}
	m, _ := strconv.Atoi(parts[0])
	total += time.Duration(m) * time.Minute
	sec := parts[1]
	whole, _, _ := strings.Cut(sec, ".")
	if len(whole) != 2 || whole > "59" || !isDecimal(sec) {
		return 0, false
	}
	d, ok := scaled(sec, time.Second)
	if !ok {
		return 0, false
	}
	return total + d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// durationUnits maps the unit words ParseQueueTime accepts to their length.
var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond, "msec": time.Millisecond, "msecs": time.Millisecond,
	"millis": time.Millisecond, "millisecond": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hrs": time.Hour, "hour": time.Hour, "hours": time.Hour,
}

func parseUnits(s string) (time.Duration, bool) {
	var total time.Duration
	any := false
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return total, any
		}
		num, rest := takeNumber(s)
		if num == "" {
			return 0, false
		}
		rest = strings.TrimLeft(rest, " ")
		i := 0
		for i < len(rest) && 'a' <= rest[i] && rest[i] <= 'z' {
			i++
		}
		unit, ok := durationUnits[rest[:i]]
		if !ok {
			return 0, false
		}
		d, ok := scaled(num, unit)
		if !ok {
			return 0, false
		}
		total += d
		any = true
		s = rest[i:]
	}
}

// queueTimeValue reads a time in queue from a JSON value; bareUnit is the
// unit implied by the field name for bare numbers.
func queueTimeValue(v *value, bareUnit time.Duration) *int64 {
	var d time.Duration
	switch v.kind {
	case kindNumber:
		f, err := strconv.ParseFloat(v.text, 64)
		if err != nil || f < 0 || f*float64(bareUnit) > float64(maxQueueTime) {
			return nil
		}
		d = time.Duration(math.Round(f * float64(bareUnit)))
	case kindString:
		var ok bool
		if d, ok = ParseQueueTime(v.text, bareUnit); !ok {
			return nil
		}
	default:
		return nil
	}
	ms := int64((d + time.Millisecond/2) / time.Millisecond)
	return &ms
}
