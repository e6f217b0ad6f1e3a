package config

import (
	"slices"
	"strings"
)

// Secrets are the secrets a configuration holds, to be masked wherever a
// client may have written one by mistake (a request's path, a source or
// event name) and the text is kept or logged.
type Secrets []string

// Secrets lists every source's HMAC secrets, header secrets and API keys,
// and the read keys.
func (c *Config) Secrets() Secrets {
	if c == nil {
		return nil
	}
	var out Secrets
	for _, src := range c.Sources {
		out = append(out, src.HMACKeys()...)
		out = append(out, src.HeaderKeys()...)
		out = append(out, src.APIKeys...)
	}
	for _, k := range c.ReadKeys {
		out = append(out, k.Key)
	}
	return slices.DeleteFunc(out, func(k string) bool { return k == "" })
}

// Masked is what a masked secret is replaced with.
const Masked = "[credential]"

// minMaskedInside is the length from which a secret is masked inside other
// text too (16 characters, the least a read key has). A shorter one is
// masked only where it stands alone, between separators (standsAlone):
// masked wherever it occurs, as in the middle of "service-hooks", it would
// tell readers what it is.
const minMaskedInside = 16

// separators end the text a short secret must be, to be masked: those of a
// path, of a query written into one by mistake ("outbound-call&key=..."),
// and spaces.
const separators = "/?&=;,: "

// standsAlone reports whether s[i:j] has a separator or an end of s on
// either side.
func standsAlone(s string, i, j int) bool {
	return (i == 0 || strings.IndexByte(separators, s[i-1]) >= 0) &&
		(j == len(s) || strings.IndexByte(separators, s[j]) >= 0)
}

// alone returns where the first occurrence of k in s from byte from that
// stands alone starts, -1 when there is none.
func alone(s, k string, from int) int {
	for from <= len(s)-len(k) {
		i := strings.Index(s[from:], k)
		if i < 0 {
			return -1
		}
		i += from
		if standsAlone(s, i, i+len(k)) {
			return i
		}
		from = i + 1
	}
	return -1
}

// Names reports whether Mask would mask anything of name (a source or
// event name, or a path). It does not allocate, for a check made on every
// delivery.
func (ss Secrets) Names(name string) bool {
	for _, k := range ss {
		if k == "" {
			continue
		}
		if len(k) >= minMaskedInside && strings.Contains(name, k) || alone(name, k, 0) >= 0 {
			return true
		}
	}
	return false
}

// Mask replaces each secret in s with [credential]: a secret long enough
// not to be guessed from where it is masked wherever it occurs, a shorter
// one where it stands alone between separators (a whole path segment, a
// query parameter's value written into a path).
func (ss Secrets) Mask(s string) string {
	// The long ones first: a short secret masked inside a long one would
	// leave the rest of it readable.
	for _, k := range ss {
		if len(k) >= minMaskedInside {
			s = strings.ReplaceAll(s, k, Masked)
		}
	}
	for _, k := range ss {
		if k == "" || len(k) >= minMaskedInside {
			continue
		}
		i := alone(s, k, 0)
		if i < 0 {
			continue
		}
		var b strings.Builder
		last := 0
		for ; i >= 0; i = alone(s, k, last) {
			b.WriteString(s[last:i])
			b.WriteString(Masked)
			last = i + len(k)
		}
		b.WriteString(s[last:])
		s = b.String()
	}
	return s
}
