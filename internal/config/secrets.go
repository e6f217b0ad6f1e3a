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
// masked only where it is a whole path segment: masked wherever it occurs,
// as in the middle of "service-hooks", it would tell readers what it is.
const minMaskedInside = 16

// Names reports whether Mask would mask anything of name, a single segment
// (a source or event name): whether it is a secret or holds a long one. It
// does not allocate, for a check made on every delivery.
func (ss Secrets) Names(name string) bool {
	for _, k := range ss {
		if k == name || len(k) >= minMaskedInside && strings.Contains(name, k) {
			return true
		}
	}
	return false
}

// Mask replaces each "/"-separated segment of s that is a secret with
// [credential], and a secret long enough not to be guessed from where it
// is masked wherever it occurs. A name (a source, an event) is a single
// segment.
func (ss Secrets) Mask(s string) string {
	for _, k := range ss {
		if len(k) >= minMaskedInside && strings.Contains(s, k) {
			s = strings.ReplaceAll(s, k, Masked)
		}
	}
	parts := strings.Split(s, "/")
	masked := false
	for i, part := range parts {
		if part != "" && slices.Contains(ss, part) {
			parts[i], masked = Masked, true
		}
	}
	if !masked {
		return s
	}
	return strings.Join(parts, "/")
}
