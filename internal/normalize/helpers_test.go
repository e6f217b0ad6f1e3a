package normalize

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

const eventsDir = "../../testdata/events"

// checkDoc is the strict acceptance test for an indexed copy: what PostgreSQL
// jsonb needs (valid JSON, valid UTF-8, no \u0000 escape, no NUL anywhere).
func checkDoc(doc []byte) error {
	if doc == nil {
		return errors.New("doc is nil")
	}
	if !json.Valid(doc) {
		return errors.New("doc is not valid JSON")
	}
	if !utf8.Valid(doc) {
		return errors.New("doc is not valid UTF-8")
	}
	if bytes.IndexByte(doc, 0) >= 0 {
		return errors.New("doc contains a NUL byte")
	}
	for i := 0; i < len(doc); i++ {
		if doc[i] != '\\' {
			continue
		}
		if i+5 < len(doc) && doc[i+1] == 'u' && string(doc[i+2:i+6]) == "0000" {
			return fmt.Errorf("doc contains \\u0000 at %d", i)
		}
		i++ // skip the escaped character, so "\\u0000" is not mistaken
	}
	// Decoded strings must not contain NUL either (catches escapes the scan
	// above might misread).
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if s, ok := tok.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return errors.New("doc has a string with NUL")
		}
	}
}

// sameJSON reports whether two JSON texts hold the same data, numbers
// compared by their text.
func sameJSON(a, b []byte) (bool, error) {
	va, err := decodeAny(a)
	if err != nil {
		return false, err
	}
	vb, err := decodeAny(b)
	if err != nil {
		return false, err
	}
	return reflect.DeepEqual(va, vb), nil
}

func decodeAny(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

type eventFile struct {
	kind      Kind
	pathEvent string // for case updates, "" (the body names the event)
	path      string
	name      string // file name without .json
}

// eventFiles lists the example bodies. Variants are named
// "<event>-<variant>.json"; the path event is the known event that prefixes
// the name.
func eventFiles(tb testing.TB) []eventFile {
	tb.Helper()
	var out []eventFile
	for _, k := range []Kind{CaseUpdates, ServiceActions, ServiceHooks} {
		paths, err := filepath.Glob(filepath.Join(eventsDir, string(k), "*.json"))
		if err != nil {
			tb.Fatal(err)
		}
		if len(paths) == 0 {
			tb.Fatalf("no example bodies for %s", k)
		}
		for _, p := range paths {
			name := strings.TrimSuffix(filepath.Base(p), ".json")
			f := eventFile{kind: k, path: p, name: name}
			for _, e := range KnownEvents(k) {
				if (name == e || strings.HasPrefix(name, e+"-")) && len(e) > len(f.pathEvent) {
					f.pathEvent = e
				}
			}
			if k != CaseUpdates && f.pathEvent == "" {
				tb.Fatalf("%s: file name names no known event", p)
			}
			out = append(out, f)
		}
	}
	return out
}

func readFile(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }
