package normalize

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
)

// extractBlobs moves base64 attachment contents out of the tree. Attachments
// are recognised by position, not by guessing at every long string: an
// object that is the value of an "attachment" key, an element of an
// "attachments" array, or any object with a "fileName", whose "content" is a
// string. Such content that decodes as base64 (standard or URL-safe, padded
// or not, line breaks allowed, or a data URI's base64) becomes a Blob, and the tree keeps
// {"sha256":"<hex>","size":N} in its place; anything else (links, text) stays.
func extractBlobs(root *value) []Blob {
	var x blobExtractor
	x.walk(root, false)
	return x.blobs
}

type blobExtractor struct {
	blobs []Blob
	seen  map[[32]byte]bool // only once there are many blobs
}

func (x *blobExtractor) walk(v *value, attachmentSlot bool) {
	switch v.kind {
	case kindArray:
		for i := range v.items {
			x.walk(&v.items[i], attachmentSlot)
		}
	case kindObject:
		if attachmentSlot || v.get("filename") != nil {
			if c := v.get("content"); c != nil && c.kind == kindString {
				x.replace(c)
			}
		}
		for i := range v.members {
			m := &v.members[i]
			if m.val.kind == kindObject || m.val.kind == kindArray {
				slot := keyMatches(m.key, "attachment") || keyMatches(m.key, "attachments")
				x.walk(&m.val, slot)
			}
		}
	}
}

func (x *blobExtractor) replace(c *value) {
	content, ok := decodeBase64(c.text)
	if !ok {
		return
	}
	sum := sha256.Sum256(content)
	if !x.has(sum) {
		x.blobs = append(x.blobs, Blob{SHA256: sum, Content: content})
		if x.seen != nil {
			x.seen[sum] = true
		} else if len(x.blobs) > dupScanLimit {
			x.seen = make(map[[32]byte]bool, 2*len(x.blobs))
			for _, b := range x.blobs {
				x.seen[b.SHA256] = true
			}
		}
	}
	*c = value{kind: kindObject, members: []member{
		{key: "sha256", val: value{kind: kindString, text: hex.EncodeToString(sum[:])}},
		{key: "size", val: value{kind: kindNumber, text: strconv.Itoa(len(content))}},
	}}
}

// decodeBase64 decodes s in the first encoding that accepts all of it.
// Padded standard base64, the documented form, goes first. The unpadded
// variants are strict about their trailing bits, so that fewer ordinary words
// in a "content" field pass for base64.
func decodeBase64(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	// A data URI (data:application/pdf;base64,JVBERi0...) carries its
	// base64 after the comma.
	if len(s) > 5 && strings.EqualFold(s[:5], "data:") {
		meta, data, ok := strings.Cut(s[5:], ",")
		if !ok || !strings.HasSuffix(strings.ToLower(meta), ";base64") {
			return nil, false
		}
		s = data
	}
	if s == "" {
		return nil, false
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil {
		return b, true
	}
	// Only the documented encoding is common; build the others on demand.
	for _, enc := range []*base64.Encoding{
		base64.RawStdEncoding.Strict(),
		base64.URLEncoding,
		base64.RawURLEncoding.Strict(),
	} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

func (x *blobExtractor) has(sum [32]byte) bool {
	if x.seen != nil {
		return x.seen[sum]
	}
	for _, b := range x.blobs {
		if b.SHA256 == sum {
			return true
		}
	}
	return false
}
