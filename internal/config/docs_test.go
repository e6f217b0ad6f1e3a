package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
)

// exampleEnv holds every ${NAME} docs/casetrail.example.yaml reads.
var exampleEnv = map[string]string{
	"CV_SECRET": "cv-secret", "SA_SECRET": "sa-secret", "SH_KEY": "sh-key",
	"ANN_KEY": "ann-key-0123456789", "BOB_KEY": "bob-key-0123456789", "ADMIN_KEY": "admin-key-0123456789",
}

// settings lists the yaml names of t's fields.
func settings(t reflect.Type) []string {
	var names []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// TestExampleConfigurationIsComplete holds docs/casetrail.example.yaml to
// the loader both ways: it names every setting the loader reads (a source's
// alternatives at least in a comment), every setting it leaves commented out
// is one the loader reads (those it sets are checked by Load, which refuses
// an unknown one), and each setting it gives shows the loader's default.
func TestExampleConfigurationIsComplete(t *testing.T) {
	t.Parallel()
	path := filepath.Join("..", "..", "docs", "casetrail.example.yaml")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	text := string(raw)

	known := map[string]bool{}
	for _, typ := range []reflect.Type{reflect.TypeFor[config.Config](), reflect.TypeFor[config.Source](), reflect.TypeFor[config.ReadKey]()} {
		for _, name := range settings(typ) {
			known[name] = true
			named := regexp.MustCompile(`(^|[\s{,#-])` + regexp.QuoteMeta(name) + `:`)
			if !named.MatchString(text) {
				t.Errorf("docs/casetrail.example.yaml does not name %s", name)
			}
		}
	}
	commented := regexp.MustCompile(`(?m)^\s*#\s*(?:-\s*)?([a-z_]+):`)
	for _, m := range commented.FindAllStringSubmatch(text, -1) {
		if !known[m[1]] {
			t.Errorf("docs/casetrail.example.yaml shows %s, which the configuration does not have", m[1])
		}
	}

	example, err := config.Load(path, env(exampleEnv))
	require.NoError(t, err)
	defaults, err := config.Load(writeConfig(t, ""), env(nil))
	require.NoError(t, err)
	ex, def := reflect.ValueOf(example).Elem(), reflect.ValueOf(defaults).Elem()
	for i := range ex.NumField() {
		f := ex.Type().Field(i)
		if !f.IsExported() || f.Name == "Sources" || f.Name == "ReadKeys" || f.Name == "Dev" {
			continue
		}
		require.Equal(t, def.Field(i).Interface(), ex.Field(i).Interface(),
			"docs/casetrail.example.yaml: %s is not the default", f.Tag.Get("yaml"))
	}
}

// TestReadmeNamesEverySetting: the README's Configuration section names
// every top-level setting and every environment variable the loader reads.
func TestReadmeNamesEverySetting(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(raw), "\n## Configuration\n")
	require.True(t, ok, "README.md has no Configuration section")
	section, _, _ = strings.Cut(section, "\n## ")

	for _, name := range settings(reflect.TypeFor[config.Config]()) {
		if !strings.Contains(section, "`"+name) && !regexp.MustCompile(`(?m)^`+name+`:`).MatchString(section) {
			t.Errorf("README.md's Configuration section does not name the setting %s", name)
		}
	}

	// Every variable the loader and the GC tuning ask for. The GC's are
	// answered, so that this test leaves the process's GC as it is.
	var mu sync.Mutex
	var asked []string
	getenv := func(name string) string {
		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(asked, name) {
			asked = append(asked, name)
		}
		return map[string]string{"GOGC": "100", "GOMEMLIMIT": "off"}[name]
	}
	_, err = config.Load(writeConfig(t, ""), getenv)
	require.NoError(t, err)
	config.TuneGC(getenv)
	require.Contains(t, asked, "DATABASE_URL")
	for _, name := range asked {
		if !strings.Contains(section, "`"+name) {
			t.Errorf("README.md's Configuration section does not name the environment variable %s", name)
		}
	}
}
