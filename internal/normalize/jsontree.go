package normalize

import (
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"
)

// maxDepth is encoding/json's nesting limit: keeping the same one means a body
// is JSON here exactly when json.Valid says so (a leading BOM aside), and
// PostgreSQL's jsonb parser still accepts that depth with its default stack.
const maxDepth = 10000

// PostgreSQL numeric limits (checked against PostgreSQL 15): jsonb stores
// numbers as numeric, which holds at most 131072 digits before the decimal
// point and 16383 after it. Larger numbers would make the jsonb insert fail.
const (
	maxNumericIntDigits = 131072
	maxNumericScale     = 16383
)

type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindObject
	kindArray
)

// value is one JSON value. Objects keep their members in document order, with
// duplicate keys already merged (last value wins, as in jsonb), and numbers
// keep their exact text so that the indexed copy does not round them.
type value struct {
	kind    kind
	boolean bool
	text    string   // string contents (valid UTF-8, no NUL) or number text
	members []member // kindObject
	items   []value  // kindArray

	// folded maps folded keys to member positions; built on the first lookup
	// in a large object so that hostile bodies cannot make lookups quadratic.
	folded map[string]int
}

type member struct {
	key string
	val value
}

// parser is a single-pass recursive-descent JSON parser. encoding/json cannot
// be used as is: its Token API silently replaces invalid UTF-8 and lone
// surrogates, so it cannot tell us that the copy is lossy, and it allocates an
// interface per token on the ingest hot path.
type parser struct {
	src   string
	pos   int
	depth int
	lossy bool

	// Members and items are collected on these stacks and copied out at the
	// end of their container, so each container gets one exact allocation
	// instead of a series of growing ones.
	members []member
	items   []value
	// peakMembers and peakItems are the most each stack has held.
	peakMembers, peakItems int
}

// scratch is a parser's stacks, kept between requests: every body needs
// them, and only for the time of its parse.
type scratch struct {
	members []member
	items   []value
}

var stacks = sync.Pool{New: func() any {
	return &scratch{members: make([]member, 0, 32), items: make([]value, 0, 16)}
}}

// maxKeptStack bounds the stacks kept for the next body.
const maxKeptStack = 1024

// parseJSON parses body into a tree. lossy reports that the tree differs from
// the body by more than formatting: NUL characters, invalid UTF-8 or lone
// surrogates were replaced by U+FFFD, duplicate keys were merged, or a number
// too large for jsonb was kept as a string.
func parseJSON(body []byte) (root value, lossy bool, err error) {
	st := stacks.Get().(*scratch)
	p := parser{src: string(body), members: st.members[:0], items: st.items[:0]}
	defer func() {
		// Forget what this parse put on the stacks (values point into the
		// body); slots above the peaks are still zero. Stacks a large body
		// grew are kept only while they stay modest; otherwise the old ones
		// are, cleared whole.
		clear(p.members[:p.peakMembers])
		clear(p.items[:p.peakItems])
		if cap(p.members) <= maxKeptStack {
			st.members = p.members[:0]
		} else {
			clear(st.members[:cap(st.members)])
		}
		if cap(p.items) <= maxKeptStack {
			st.items = p.items[:0]
		} else {
			clear(st.items[:cap(st.items)])
		}
		stacks.Put(st)
	}()
	// A UTF-8 byte order mark is not JSON, but some senders on Windows stacks
	// write one; it carries no data, so skip it rather than reject the event.
	if len(p.src) >= 3 && p.src[:3] == "\xef\xbb\xbf" {
		p.pos = 3
	}
	p.skipSpace()
	root, err = p.value()
	if err != nil {
		return value{}, false, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return value{}, false, p.fail("unexpected data after top-level value")
	}
	return root, p.lossy, nil
}

// fail reports a syntax error. It names the offset and never the offending
// bytes: bodies carry PHI and errors end up in logs.
func (p *parser) fail(msg string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrNotJSON, msg, p.pos)
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value parses the value at p.pos. It returns the value rather than filling
// one in: a pointer passed down the recursion would make every member and
// item escape to the heap.
func (p *parser) value() (v value, err error) {
	if p.pos >= len(p.src) {
		return v, p.fail("unexpected end of input")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		err = p.object(&v)
	case c == '[':
		err = p.array(&v)
	case c == '"':
		var s string
		s, err = p.str()
		v = value{kind: kindString, text: s}
	case c == '-' || ('0' <= c && c <= '9'):
		err = p.number(&v)
	case c == 't':
		v = value{kind: kindBool, boolean: true}
		err = p.literal("true")
	case c == 'f':
		v = value{kind: kindBool}
		err = p.literal("false")
	case c == 'n':
		v = value{kind: kindNull}
		err = p.literal("null")
	default:
		err = p.fail("invalid character looking for a value")
	}
	return v, err
}

func (p *parser) literal(lit string) error {
	if len(p.src)-p.pos < len(lit) || p.src[p.pos:p.pos+len(lit)] != lit {
		return p.fail("invalid literal")
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.fail("nesting too deep")
	}
	p.pos++
	p.skipSpace()
	return nil
}

// dupScanLimit is the object size from which duplicate keys are found with a
// map instead of a linear scan; webhook objects are almost always smaller.
const dupScanLimit = 16

func (p *parser) object(v *value) error {
	if err := p.enter(); err != nil {
		return err
	}
	*v = value{kind: kindObject}
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.depth--
		return nil
	}
	mark := len(p.members)
	defer func() { p.members = p.members[:mark] }()
	var index map[string]int
	for {
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return p.fail("expected object key")
		}
		key, err := p.str()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return p.fail("expected ':' after object key")
		}
		p.pos++
		p.skipSpace()
		mv, err := p.value()
		if err != nil {
			return err
		}

		own := p.members[mark:]
		dup := -1
		if index != nil {
			if i, ok := index[key]; ok {
				dup = i
			}
		} else {
			for i := range own {
				if own[i].key == key {
					dup = i
					break
				}
			}
		}
		if dup >= 0 {
			own[dup].val = mv
			p.lossy = true
		} else {
			p.members = append(p.members, member{key: key, val: mv})
			p.peakMembers = max(p.peakMembers, len(p.members))
			n := len(p.members) - mark
			if index != nil {
				index[key] = n - 1
			} else if n > dupScanLimit {
				index = make(map[string]int, 2*n)
				for i, m := range p.members[mark:] {
					index[m.key] = i
				}
			}
		}

		p.skipSpace()
		if p.pos >= len(p.src) {
			return p.fail("unexpected end of input in object")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case '}':
			p.pos++
			p.depth--
			v.members = append([]member(nil), p.members[mark:]...)
			return nil
		default:
			return p.fail("expected ',' or '}' in object")
		}
	}
}

func (p *parser) array(v *value) error {
	if err := p.enter(); err != nil {
		return err
	}
	*v = value{kind: kindArray}
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.depth--
		return nil
	}
	mark := len(p.items)
	defer func() { p.items = p.items[:mark] }()
	for {
		item, err := p.value()
		if err != nil {
			return err
		}
		p.items = append(p.items, item)
		p.peakItems = max(p.peakItems, len(p.items))
		p.skipSpace()
		if p.pos >= len(p.src) {
			return p.fail("unexpected end of input in array")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
			p.skipSpace()
		case ']':
			p.pos++
			p.depth--
			v.items = append([]value(nil), p.items[mark:]...)
			return nil
		default:
			return p.fail("expected ',' or ']' in array")
		}
	}
}

// str parses a string starting at the opening quote. Strings without escapes
// or damage are returned as slices of the source, so the common case does not
// allocate.
func (p *parser) str() (string, error) {
	start := p.pos + 1
	i := start
	for i < len(p.src) {
		c := p.src[i]
		if c == '"' {
			p.pos = i + 1
			return p.src[start:i], nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(p.src[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}

	b := make([]byte, 0, i-start+16)
	b = append(b, p.src[start:i]...)
	for i < len(p.src) {
		c := p.src[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return string(b), nil
		case c == '\\':
			p.pos = i
			n, err := p.escape(&b, i)
			if err != nil {
				return "", err
			}
			i = n
		case c < 0x20:
			p.pos = i
			return "", p.fail("control character in string")
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(p.src[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
				p.lossy = true
			} else {
				b = append(b, p.src[i:i+size]...)
			}
			i += size
		}
	}
	p.pos = i
	return "", p.fail("unterminated string")
}

// escape decodes the escape sequence at src[i] (a backslash) into b and
// returns the index after it.
func (p *parser) escape(b *[]byte, i int) (int, error) {
	if i+1 >= len(p.src) {
		return 0, p.fail("unterminated string")
	}
	switch c := p.src[i+1]; c {
	case '"', '\\', '/':
		*b = append(*b, c)
	case 'b':
		*b = append(*b, '\b')
	case 'f':
		*b = append(*b, '\f')
	case 'n':
		*b = append(*b, '\n')
	case 'r':
		*b = append(*b, '\r')
	case 't':
		*b = append(*b, '\t')
	case 'u':
		r, ok := hex4(p.src, i+2)
		if !ok {
			return 0, p.fail("invalid \\u escape")
		}
		next := i + 6
		switch {
		case r == 0:
			// jsonb refuses \u0000 and text columns refuse NUL.
			r = utf8.RuneError
			p.lossy = true
		case 0xD800 <= r && r < 0xDC00:
			lo, ok := rune(0), false
			if next+1 < len(p.src) && p.src[next] == '\\' && p.src[next+1] == 'u' {
				lo, ok = hex4(p.src, next+2)
			}
			if ok && 0xDC00 <= lo && lo < 0xE000 {
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				next += 6
			} else {
				r = utf8.RuneError
				p.lossy = true
			}
		case 0xDC00 <= r && r < 0xE000:
			r = utf8.RuneError
			p.lossy = true
		}
		*b = utf8.AppendRune(*b, r)
		return next, nil
	default:
		p.pos = i
		return 0, p.fail("invalid escape in string")
	}
	return i + 2, nil
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (p *parser) number(v *value) error {
	start := p.pos
	s := p.src
	i := p.pos
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return p.fail("invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		d := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			return p.fail("invalid number")
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		d := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		if i == d {
			p.pos = i
			return p.fail("invalid number")
		}
	}
	p.pos = i
	text := s[start:i]
	if fitsNumeric(text) {
		*v = value{kind: kindNumber, text: text}
	} else {
		// Keep the digits, but as a string: jsonb would refuse the number and
		// the whole indexed copy with it.
		*v = value{kind: kindString, text: text}
		p.lossy = true
	}
	return nil
}

// fitsNumeric reports whether PostgreSQL's numeric type (and so jsonb) accepts
// the valid JSON number text.
func fitsNumeric(text string) bool {
	mant, exp := text, ""
	for i := 0; i < len(text); i++ {
		if text[i] == 'e' || text[i] == 'E' {
			mant, exp = text[:i], text[i+1:]
			break
		}
	}
	if len(mant) <= 20 && exp == "" {
		return true // the overwhelmingly common case
	}
	if mant[0] == '-' {
		mant = mant[1:]
	}
	intPart, fracPart := mant, ""
	for i := 0; i < len(mant); i++ {
		if mant[i] == '.' {
			intPart, fracPart = mant[:i], mant[i+1:]
			break
		}
	}
	e := int64(0)
	if exp != "" {
		neg := exp[0] == '-'
		if exp[0] == '+' || exp[0] == '-' {
			exp = exp[1:]
		}
		for len(exp) > 1 && exp[0] == '0' {
			exp = exp[1:]
		}
		if len(exp) > 9 {
			return false
		}
		n, err := strconv.ParseInt(exp, 10, 64)
		if err != nil {
			return false
		}
		if neg {
			n = -n
		}
		e = n
	}
	if int64(len(fracPart))-e > maxNumericScale {
		return false
	}
	// Position of the first significant digit gives the number of digits
	// before the decimal point once the exponent is applied.
	digits := intPart + fracPart
	first := -1
	for i := 0; i < len(digits); i++ {
		if digits[i] != '0' {
			first = i
			break
		}
	}
	if first < 0 {
		return true // zero
	}
	intDigits := int64(len(intPart)-first) + e
	return intDigits <= maxNumericIntDigits
}

// appendJSON writes v as compact JSON. Strings are valid UTF-8 without NUL by
// construction, so the output is always acceptable to jsonb.
func (v *value) appendJSON(b []byte) []byte {
	switch v.kind {
	case kindNull:
		return append(b, "null"...)
	case kindBool:
		if v.boolean {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case kindNumber:
		return append(b, v.text...)
	case kindString:
		return appendString(b, v.text)
	case kindObject:
		b = append(b, '{')
		for i := range v.members {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, v.members[i].key)
			b = append(b, ':')
			b = v.members[i].val.appendJSON(b)
		}
		return append(b, '}')
	case kindArray:
		b = append(b, '[')
		for i := range v.items {
			if i > 0 {
				b = append(b, ',')
			}
			b = v.items[i].appendJSON(b)
		}
		return append(b, ']')
	}
	return append(b, "null"...)
}

const hexDigits = "0123456789abcdef"

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		case '\b':
			b = append(b, '\\', 'b')
		case '\f':
			b = append(b, '\\', 'f')
		case 0:
			// Unreachable from parsed input; kept so no caller can emit \u0000.
			b = utf8.AppendRune(b, utf8.RuneError)
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
