package normalize

import (
	"slices"
	"strings"
)

// NormalizePhone turns a phone number as people and systems write it into
// E.164 ("+447700900123"), so that the same caller correlates across the three
// platforms. It reports false for anything that is not confidently a phone
// number; a missed correlation is better than a wrong one.
//
// Rules, in order:
//   - An optional "tel:" prefix is dropped. Spaces (including no-break
//     spaces), tabs, dashes, dots, slashes and parentheses are ignored; any
//     other character (letters, "@", ...) means it is not a phone number.
//   - A leading "+" or "00" means the number is international. A "(0)" trunk
//     written after the country code ("+44 (0)20 7946 0958") is dropped,
//     except after the codes of keepLeadingZero, where that 0 is part of the
//     number ("+39 (0)6 1234 5678" -> "+390612345678").
//   - Otherwise, with defaultCountryCode set (digits, e.g. "44"; a leading "+"
//     is tolerated): a leading trunk "0" is dropped and the code prepended
//     ("07700 900123" with "44" -> "+447700900123"), except under the codes
//     of keepLeadingZero, whose numbers keep their 0 in international form
//     ("06 1234 5678" with "39" -> "+390612345678"); 11 or more digits are
//     already international and just get a "+"; shorter ones get the code
//     ("7700 900123" -> "+447700900123"), also when they start with the
//     code's digits, as national numbers may.
//     With "1" (the North American plan, which has no trunk 0), a national
//     number is 10 digits, or 11 starting with 1; "011" dials abroad; 12 or
//     more digits are international; anything shorter is refused ("555-0142"
//     lacks its area code). With "7" (Russia, Kazakhstan) the trunk is 8
//     and "810" dials abroad; with "375" (Belarus) the trunk is "8 0"
//     (11 digits "80..." are national) and "810" dials abroad too.
//   - Otherwise, without a default code, only 11 to 15 digits are accepted, as
//     a number already written internationally without its "+".
//   - The result must be "+" and 8 to 15 digits not starting with 0.
func NormalizePhone(raw, defaultCountryCode string) (string, bool) {
	s := strings.TrimSpace(raw)
	if len(s) > 64 {
		return "", false
	}
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		s = s[4:]
	}

	var digits [64]byte
	n := 0
	plus := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			digits[n] = c
			n++
		case c == '+':
			if plus || n > 0 {
				return "", false
			}
			plus = true
		case c == '(' && strings.HasPrefix(s[i:], "(0)") && trunkAfterCode(digits[:n], plus):
			i += 2 // "+44 (0)20 ...": the trunk zero is not dialled from abroad
		case c == ' ' || c == '\t' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')':
		case c == 0xC2 && i+1 < len(s) && s[i+1] == 0xA0: // U+00A0 no-break space
			i++
		default:
			return "", false
		}
	}
	d := string(digits[:n])

	switch {
	case plus:
	case strings.HasPrefix(d, "00"):
		d = d[2:]
	default:
		cc := strings.TrimPrefix(strings.TrimSpace(defaultCountryCode), "+")
		if !validCountryCode(cc) {
			cc = ""
		}
		switch {
		case cc == "":
			if len(d) < 11 {
				return "", false
			}
		case cc == "1": // the North American plan: no trunk 0, "011" dials abroad
			switch {
			case strings.HasPrefix(d, "011"):
				d = d[3:]
			case len(d) == 10:
				d = "1" + d
			case len(d) == 11 && d[0] == '1':
			case len(d) >= 12: // written internationally without its "+"
			default: // a local number without its area code, or a typo
				return "", false
			}
		case cc == "7": // Russia and Kazakhstan: trunk 8, "810" dials abroad
			switch {
			case strings.HasPrefix(d, "810") && len(d) >= 11:
				d = d[3:]
			case len(d) == 11 && d[0] == '8':
				d = cc + d[1:]
			case len(d) == 10:
				d = cc + d
			case len(d) >= 11: // written internationally without its "+"
			default:
				return "", false
			}
		case cc == "375" && len(d) == 11 && strings.HasPrefix(d, "80") && d[2] != '0':
			// Belarus: the trunk prefix is "8 0" ("8 029 123 45 67"); its
			// area codes never start with 0, so "800..." is not one.
			d = cc + d[2:]
		case cc == "375" && strings.HasPrefix(d, "810") && len(d) >= 11:
			d = d[3:] // "8 10" dials abroad from Belarus
		case strings.HasPrefix(d, "0") && keepLeadingZero[cc]:
			d = cc + d
		case strings.HasPrefix(d, "0"):
			d = cc + d[1:]
		case len(d) >= 11:
			// Already international without its "+": a national number
			// written without its trunk 0 is shorter than this.
		default:
			d = cc + d
		}
	}

	if len(d) < 8 || len(d) > 15 || d[0] == '0' {
		return "", false
	}
	return "+" + d, true
}

// keepLeadingZero holds the calling codes whose national numbers have no
// trunk prefix: a leading 0 is part of the number and is dialled from abroad
// too (Rome is 06 at home and +39 06 from abroad). Italy, San Marino and the
// Vatican, which shares Italy's numbering.
var keepLeadingZero = map[string]bool{"39": true, "378": true, "379": true}

// trunkAfterCode reports whether a "(0)" written after the digits ds of an
// international number ("+" when plus, else "00" and the code) is a trunk
// prefix to drop. Under a code of keepLeadingZero it is the number's own
// leading 0, which is dialled from abroad too.
func trunkAfterCode(ds []byte, plus bool) bool {
	switch {
	case plus && len(ds) > 0:
	case len(ds) > 2 && ds[0] == '0' && ds[1] == '0':
		ds = ds[2:]
	default:
		return false
	}
	return !keepLeadingZero[string(ds)]
}

// validCountryCode reports whether cc looks like an ITU calling code.
func validCountryCode(cc string) bool {
	if len(cc) == 0 || len(cc) > 3 || cc[0] == '0' {
		return false
	}
	for i := 0; i < len(cc); i++ {
		if cc[i] < '0' || cc[i] > '9' {
			return false
		}
	}
	return true
}

// PhoneKeys returns, folded (see FoldKey) and sorted, every member name that
// Decode may read a phone number from, over all kinds and events. The
// redaction of read views masks the values under these names; it takes them
// from here, the decoders' own tables, so that a new alias cannot be
// normalised without also being masked. The slice is the caller's to keep.
func PhoneKeys() []string {
	var keys []string
	for _, t := range [][]string{phoneKeys, actionPhoneKeys, hookPhoneKeys, hookTargetPhoneKeys, workItemPhoneKeys} {
		keys = append(keys, t...)
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// MayBePhone reports whether NormalizePhone accepts raw under some default
// country code (or none), that is, whether a source configured with any code
// could store raw as a phone number. Six codes stand for all: without one,
// international numbers and numbers of 11 to 15 digits are accepted; "1"
// and "7" have rules of their own ("375" has too, but what it accepts, 11
// digits after "80" or a number after "810", "" and "7" accept already); any other code only adds national
// numbers, and the shortest and the longest of those ("2", "999") bound the
// lengths any code accepts (5 to 14 digits after one trunk 0); a code that
// keeps the leading 0 ("378", the longest of keepLeadingZero) also accepts
// a 0 and 4 digits.
func MayBePhone(raw string) bool {
	for _, cc := range []string{"", "1", "7", "2", "999", "378"} {
		if _, ok := NormalizePhone(raw, cc); ok {
			return true
		}
	}
	return false
}
