package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// parse decodes the YAML file into cfg, reading each ${NAME} in a value from
// the environment. It walks the YAML tree itself rather than handing it to
// yaml's decoder: yaml's messages quote the start of a value they cannot
// decode, and a value may be a secret read from the environment. Here every
// message names the setting's path and line, none quotes a value, and a
// setting this package does not know is refused (a typo in a secret's name
// must not silently disable it).
func parse(raw []byte, getenv func(string) string, cfg *Config) error {
	return parseWith(&decoder{getenv: getenv, fromEnv: map[string]string{}}, raw, cfg)
}

func parseWith(d *decoder, raw []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil // an empty file
	} else if err != nil {
		return err
	}
	// A second document (after a "---") would otherwise be ignored, and
	// the settings in it with it.
	for {
		var more yaml.Node
		if err := dec.Decode(&more); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return err
		}
		if len(more.Content) > 0 && more.Content[0].ShortTag() != "!!null" {
			return fmt.Errorf("line %d: a second YAML document: the file must hold one", more.Line)
		}
	}
	if len(doc.Content) == 0 {
		return nil // an empty file
	}
	err := d.decode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "")
	cfg.fromEnv = d.fromEnv
	return err
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

type decoder struct {
	getenv func(string) string
	// fromEnv maps the path of each setting whose value has a ${NAME} in it
	// to those references, for messages to name instead of the value.
	fromEnv map[string]string
	// only, when set, names the settings that must be read: any other one
	// whose ${NAME} is not set is left unset instead of refused.
	only map[string]bool
}

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// decode sets v, at path in the file, from n, and returns every problem.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil // `key:` with nothing after it keeps the default
	}
	t := v.Type()
	switch {
	case reflect.PointerTo(t).Implements(unmarshaler):
		return d.scalar(n, v, path)
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return mismatch(n, t, path)
		}
		return d.mapping(n, v, path)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return mismatch(n, t, path)
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		var errs []error
		for i, c := range n.Content {
			errs = append(errs, d.decode(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i)))
		}
		v.Set(s)
		return errors.Join(errs...)
	}
	return d.scalar(n, v, path)
}

// mapping sets the fields of the struct v from the keys of n, by their yaml
// tags.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) error {
	fields := map[string]int{}
	for i := range v.NumField() {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = i
		}
	}
	var errs []error
	// Merged mappings (<<: *anchor) first, so that the keys written beside
	// them win.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].ShortTag() != "!!merge" {
			continue
		}
		m := n.Content[i+1]
		if m.Kind == yaml.AliasNode {
			m = m.Alias
		}
		merged := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			merged = m.Content
		}
		for _, m := range merged {
			errs = append(errs, d.decode(m, v, path))
		}
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			continue
		}
		at := k.Value
		if path != "" {
			at = path + "." + k.Value
		}
		f, ok := fields[k.Value]
		switch {
		case k.Kind != yaml.ScalarNode || !ok:
			errs = append(errs, fmt.Errorf("line %d: %s: unknown setting", k.Line, at))
		case seen[k.Value] != 0:
			errs = append(errs, fmt.Errorf("line %d: %s: set twice (also on line %d)", k.Line, at, seen[k.Value]))
		default:
			seen[k.Value] = k.Line
			errs = append(errs, d.decode(val, v.Field(f), at))
		}
	}
	return errors.Join(errs...)
}

// scalar reads ${NAME}s from the environment into a copy of n (an anchored
// node may be decoded more than once) and decodes it into v. The
// substitution comes after parsing, so a value read from the environment
// cannot change the file's structure, and a plain ${NAME} still decodes as a
// number or a boolean when the setting is one.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) error {
	if n.Kind != yaml.ScalarNode {
		return mismatch(n, v.Type(), path)
	}
	c := *n
	var missing []string
	c.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		val := d.getenv(name)
		if val == "" {
			missing = append(missing, name)
		}
		return val
	})
	if len(missing) > 0 && d.only != nil && !d.only[path] {
		return nil
	}
	if len(missing) > 0 {
		return fmt.Errorf("line %d: %s: environment variable %s is not set (or empty)", n.Line, path, strings.Join(missing, ", "))
	}
	if refs := envRefs(n); refs != "" {
		d.fromEnv[path] = refs
		// A plain (unquoted) ${NAME} takes the type of the value read, for
		// a number or a boolean; a string setting keeps any value as text.
		if c.Style == 0 && v.Kind() != reflect.String {
			c.Tag = ""
		}
	}
	if c.Decode(v.Addr().Interface()) != nil {
		return mismatch(n, v.Type(), path)
	}
	return nil
}

// envRefs lists the ${NAME}s written in a scalar.
func envRefs(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode {
		return ""
	}
	return strings.Join(envRef.FindAllString(n.Value, -1), ", ")
}

// mismatch says what the setting at path takes, never the value it was
// given: that may be a secret.
func mismatch(n *yaml.Node, t reflect.Type, path string) error {
	where := path
	if where == "" {
		where = "the file"
	}
	msg := fmt.Sprintf("line %d: %s: expected %s", n.Line, where, describe(t))
	if got := map[yaml.Kind]string{yaml.SequenceNode: "a list", yaml.MappingNode: "a mapping"}[n.Kind]; got != "" {
		msg += ", not " + got
	} else if k := t.Kind(); k == reflect.Slice || k == reflect.Struct {
		msg += ", not a single value"
	}
	if refs := envRefs(n); refs != "" {
		msg += " (read from " + refs + ")"
	}
	return errors.New(msg)
}

func describe(t reflect.Type) string {
	switch k := t.Kind(); {
	case t == reflect.TypeFor[Duration]():
		return "a duration (e.g. 30s)"
	case k == reflect.Pointer:
		return describe(t.Elem())
	case k == reflect.Bool:
		return "true or false"
	case k >= reflect.Int && k <= reflect.Uint64:
		return "a whole number"
	case k == reflect.Slice:
		return "a list"
	case k == reflect.Struct:
		return "a mapping of settings"
	}
	return "a single value"
}
