package normalize

import (
	"strconv"
	"strings"
	"time"
)

// Summaries are read by analysts whose view is PHI-redacted, so they are
// built only from names of staff, statuses and counts, each clipped to this
// many characters; never from comment text, answers, attachment content,
// medication or phone numbers.
const summaryPartLen = 60

// actorFrom reads a person object ({id, firstName, lastName, name, email}) or
// a bare string (an email or an id).
func actorFrom(v *value) *Actor {
	if v == nil {
		return nil
	}
	var a Actor
	switch v.kind {
	case kindObject:
		a.ID = v.str("id", "userid", "agentid")
		a.Email = v.str("email", "emailaddress")
		a.Name = clip(v.str("name", "displayname", "fullname"), maxKeyLen)
		if a.Name == "" {
			first, last := clip(strings.TrimSpace(stringOf(v.get("firstname"))), 100), clip(strings.TrimSpace(stringOf(v.get("lastname"))), 100)
			a.Name = strings.TrimSpace(first + " " + last)
		}
	case kindString, kindNumber:
		s := scalarText(v)
		if strings.Contains(s, "@") {
			a.Email = s
		} else {
			a.ID = s
		}
	}
	if a == (Actor{}) {
		return nil
	}
	return &a
}

// stringOf returns the contents of a string value, "" for anything else.
func stringOf(v *value) string {
	if v == nil || v.kind != kindString {
		return ""
	}
	return v.text
}

// displayName is how a summary names a person.
func displayName(a *Actor) string {
	switch {
	case a == nil:
		return ""
	case a.Name != "":
		return clip(a.Name, summaryPartLen)
	case a.Email != "":
		return clip(a.Email, summaryPartLen)
	case a.ID != "":
		return "user " + clip(a.ID, summaryPartLen)
	}
	return ""
}

// by returns " by <name>" or "".
func by(a *Actor) string {
	if n := displayName(a); n != "" {
		return " by " + n
	}
	return ""
}

// byAgent is by for contact-center events, whose bare ids are agent ids.
func byAgent(a *Actor) string {
	if a != nil && a.Name == "" && a.Email == "" && a.ID != "" {
		return " by agent " + clip(a.ID, summaryPartLen)
	}
	return by(a)
}

// humanize turns an event name such as "REASSIGN_CASE" or "after-check-in"
// into "Reassign case" / "After check in".
func humanize(name string) string {
	name = clip(name, summaryPartLen)
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if c == '_' || c == '-' || c == '.' {
			b[i] = ' '
		}
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "Event"
	}
	if 'a' <= s[0] && s[0] <= 'z' {
		s = string(s[0]-'a'+'A') + s[1:]
	}
	return s
}

// formatMs writes a duration for humans: "42s", "1.5s", "1m30s", "2h5m".
func formatMs(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	if d < time.Minute {
		s := strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
		return s + "s"
	}
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), d%time.Minute
	var b strings.Builder
	if h > 0 {
		b.WriteString(strconv.FormatInt(h, 10) + "h")
	}
	if m > 0 {
		b.WriteString(strconv.FormatInt(m, 10) + "m")
	}
	if s > 0 {
		b.WriteString(strconv.FormatFloat(s.Seconds(), 'f', -1, 64) + "s")
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
