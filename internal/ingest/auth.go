package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/casetrail/casetrail/internal/config"
)

// authenticator checks one source's credentials on the raw body, before
// anything parses it. Every comparison is constant-time.
type authenticator struct {
	kind       string
	none       bool
	hmacKeys   [][]byte // any one may sign: more than one while a secret is rotated
	hmacIDs    []string
	header     string
	headerKeys [][32]byte // SHA-256 of each secret accepted in header
	headerIDs  []string
	apiKeys    [][32]byte
	apiKeyIDs  []string
}

func newAuthenticator(s config.Source) *authenticator {
	a := &authenticator{kind: s.Kind, none: s.Auth == "none"}
	for _, k := range s.HMACKeys() {
		a.hmacKeys = append(a.hmacKeys, []byte(k))
		a.hmacIDs = append(a.hmacIDs, "hmac:"+config.Fingerprint(k))
	}
	if s.AuthHeader != "" {
		a.header = s.AuthHeader
		for _, k := range s.HeaderKeys() {
			a.headerKeys = append(a.headerKeys, sha256.Sum256([]byte(k)))
			a.headerIDs = append(a.headerIDs, "header:"+config.Fingerprint(k))
		}
	}
	for _, k := range s.APIKeys {
		a.apiKeys = append(a.apiKeys, sha256.Sum256([]byte(k)))
		a.apiKeyIDs = append(a.apiKeyIDs, "api-key:"+config.Fingerprint(k))
	}
	return a
}

// needsBody tells whether the request's only credential is a signature over
// the body, which cannot be checked when the body was not read in full. A
// case-updates source with both a header secret and a signature checks the
// header when the request carries it; a request with no credential at all
// is refused as unauthenticated, whatever its size.
func (a *authenticator) needsBody(h http.Header) bool {
	switch {
	case a.none || len(a.hmacKeys) == 0:
		return false
	case a.kind == config.KindCaseUpdates:
		if a.header != "" && h.Get(a.header) != "" {
			return false
		}
		return h.Get("x-cv-signature") != ""
	case a.kind == config.KindServiceActions:
		scheme, _, ok := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " ")
		return ok && strings.EqualFold(scheme, "HMAC")
	}
	return false
}

// verify returns the id of the credential that accepted the request (a
// fingerprint, never the secret), or why it was refused.
func (a *authenticator) verify(h http.Header, body []byte) (string, string, bool) {
	if a.none {
		return "none", "", true
	}
	switch a.kind {
	case config.KindCaseUpdates:
		if a.header != "" {
			if v := h.Get(a.header); v != "" {
				if i := matchKey(v, a.headerKeys); i >= 0 {
					return a.headerIDs[i], "", true
				}
				return "", "the " + a.header + " header does not match", false
			}
		}
		if len(a.hmacKeys) > 0 {
			sig := h.Get("x-cv-signature")
			if sig == "" {
				return "", "missing x-cv-signature header (hex HMAC-SHA256 of the body)", false
			}
			got, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(sig), "sha256="))
			if err != nil {
				return "", "x-cv-signature does not match the body", false
			}
			if id, ok := a.signedBy(got, body); ok {
				return id, "", true
			}
			return "", "x-cv-signature does not match the body", false
		}
		return "", "missing " + a.header + " header", false
	case config.KindServiceActions:
		v := h.Get("Authorization")
		scheme, sig, ok := strings.Cut(strings.TrimSpace(v), " ")
		if !ok || !strings.EqualFold(scheme, "HMAC") {
			return "", "missing Authorization: HMAC <base64 HMAC-SHA256 of the body>", false
		}
		got, err := base64.StdEncoding.DecodeString(strings.TrimSpace(sig))
		if err != nil {
			return "", "the Authorization HMAC does not match the body", false
		}
		if id, ok := a.signedBy(got, body); ok {
			return id, "", true
		}
		return "", "the Authorization HMAC does not match the body", false
	case config.KindServiceHooks:
		v := h.Get("x-api-key")
		if v == "" {
			return "", "missing x-api-key header", false
		}
		match := matchKey(v, a.apiKeys)
		if match < 0 {
			return "", "x-api-key is not a configured key", false
		}
		return a.apiKeyIDs[match], "", true
	}
	return "", "source has no credentials", false
}

// matchKey returns the index of the key whose SHA-256 is in sums, or -1.
// It compares against every key, without stopping early, so that timing
// tells nothing about which key (if any) matched.
func matchKey(v string, sums [][32]byte) int {
	sum := sha256.Sum256([]byte(v))
	match := -1
	for i, k := range sums {
		if subtle.ConstantTimeCompare(sum[:], k[:]) == 1 {
			match = i
		}
	}
	return match
}

// signedBy returns the id of the secret whose HMAC-SHA256 of body is sig.
// Every secret is tried, so that timing tells nothing about which matched.
func (a *authenticator) signedBy(sig, body []byte) (string, bool) {
	match := -1
	for i, k := range a.hmacKeys {
		m := hmac.New(sha256.New, k)
		m.Write(body)
		if hmac.Equal(sig, m.Sum(nil)) {
			match = i
		}
	}
	if match < 0 {
		return "", false
	}
	return a.hmacIDs[match], true
}
