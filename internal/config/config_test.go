package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "casetrail.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o600))
	return path
}

const valid = `
listen: "127.0.0.1:9000"
max_body_bytes: 1048576
sources:
  - name: case-updates
    kind: case-updates
    hmac_secret: "${CV_SECRET}"
  - name: service-actions
    kind: service-actions
    hmac_secret: "${SA_SECRET}"
  - name: service-hooks
    kind: service-hooks
    api_keys: ["${SH_KEY_OLD}", "${SH_KEY_NEW}"]
  - name: open-sandbox
    kind: service-hooks
    auth: none
read_keys:
  - {name: ann, role: analyst, key: "${ANN_KEY}"}
  - {name: bob, role: auditor, key: "${BOB_KEY}"}
`

var validEnv = map[string]string{
	"CV_SECRET": "cv-secret", "SA_SECRET": "sa-secret",
	"SH_KEY_OLD": "old-key", "SH_KEY_NEW": "new-key",
	"ANN_KEY": "ann-key-0123456789", "BOB_KEY": "bob-key-0123456789",
}

func TestLoadValid(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(writeConfig(t, valid), env(validEnv))
	require.NoError(t, err)
	require.False(t, cfg.Dev)
	require.Equal(t, "127.0.0.1:9000", cfg.Listen)
	require.EqualValues(t, 1048576, cfg.MaxBodyBytes)
	src, ok := cfg.Source("service-hooks")
	require.True(t, ok)
	require.Equal(t, []string{"old-key", "new-key"}, src.APIKeys)
	src, _ = cfg.Source("case-updates")
	require.Equal(t, "cv-secret", src.HMACSecret)
	require.Equal(t, "ann-key-0123456789", cfg.ReadKeys[0].Key)
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Parallel()
	e := map[string]string{"DATABASE_URL": "postgres://elsewhere/db", "CASETRAIL_LISTEN": ":7000",
		"CASETRAIL_REPORT_DATABASE_URL": "postgres://replica/db"}
	for k, v := range validEnv {
		e[k] = v
	}
	cfg, err := config.Load(writeConfig(t, valid), env(e))
	require.NoError(t, err)
	require.Equal(t, "postgres://elsewhere/db", cfg.DatabaseURL)
	require.Equal(t, "postgres://replica/db", cfg.ReportDatabaseURL)
	require.Equal(t, ":7000", cfg.Listen)
}

func TestNoFileIsDevMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg, err := config.Load("", env(map[string]string{"CASETRAIL_DATA_DIR": dir}))
	require.NoError(t, err)
	require.True(t, cfg.Dev)
	require.Equal(t, ":8080", cfg.Listen)
	require.EqualValues(t, config.DefaultMaxBodyBytes, cfg.MaxBodyBytes)

	dc, err := cfg.UseDevCredentials()
	require.NoError(t, err)
	require.Len(t, cfg.Sources, 3)
	for _, kind := range config.Kinds {
		s, ok := cfg.Source(kind)
		require.True(t, ok, kind)
		require.Equal(t, kind, s.Kind)
	}
	// A second start reuses the same credentials.
	cfg2, err := config.Load("", env(map[string]string{"CASETRAIL_DATA_DIR": dir}))
	require.NoError(t, err)
	dc2, err := cfg2.UseDevCredentials()
	require.NoError(t, err)
	require.Equal(t, *dc, *dc2)
	info, err := os.Stat(filepath.Join(dir, "dev-credentials.json"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestInvalidConfigNamesTheProblem(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"unknown kind", "sources:\n  - {name: x, kind: carrier-pigeon, auth: none}\n", nil, `unknown kind "carrier-pigeon"`},
		{"no credentials", "sources:\n  - {name: cu, kind: case-updates}\n", nil, "sources[0] (cu): no credentials"},
		{"hooks without keys", "sources:\n  - {name: sh, kind: service-hooks}\n", nil, "set api_keys"},
		{"unset env", "sources:\n  - {name: cu, kind: case-updates, hmac_secret: \"${NOT_SET}\"}\n", nil, "line 2: environment variable NOT_SET is not set"},
		{"unknown setting", "sorces: []\n", nil, "field sorces not found"},
		{"duplicate source", "sources:\n  - {name: a, kind: service-hooks, auth: none}\n  - {name: a, kind: service-hooks, auth: none}\n", nil, "name is used twice"},
		{"bad role", "read_keys:\n  - {name: eve, role: god, key: \"0123456789abcdef\"}\n", nil, `unknown role "god"`},
		{"short key", "read_keys:\n  - {name: eve, role: analyst, key: short}\n", nil, "at least 16 characters"},
		{"auth typo", "sources:\n  - {name: a, kind: service-hooks, auth: nope}\n", nil, `auth: "nope" is not understood`},
		{"bad duration", "shutdown_timeout: soon\n", nil, `"soon" is not a duration`},
		{"bad yaml", "sources: [\n", nil, "yaml"},
		{"bad outage mode", "before_hooks_on_outage: maybe\n", nil, `"maybe" must be spool or fail`},
		{"negative parallel batch", "commit_parallel_batch: -1\n", nil, "commit_parallel_batch: -1 is out of range (at least 1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(writeConfig(t, tc.yaml), env(tc.env))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestSecretsNotInErrors(t *testing.T) {
	t.Parallel()
	_, err := config.Load(writeConfig(t, "sources:\n  - {name: a, kind: case-updates, hmac_secret: \"${S}\", api_keys: [k]}\n"),
		env(map[string]string{"S": "super-secret-value"}))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "super-secret-value")
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	require.Len(t, config.Fingerprint("a"), 8)
	require.NotEqual(t, config.Fingerprint("a"), config.Fingerprint("b"))
	require.NotContains(t, config.Fingerprint("secret"), "secret")
}

// TestExampleConfigurationLoads keeps docs/casetrail.example.yaml a file the
// server accepts, every setting it names included.
func TestExampleConfigurationLoads(t *testing.T) {
	t.Parallel()
	e := map[string]string{
		"CV_SECRET": "cv-secret", "SA_SECRET": "sa-secret", "SH_KEY": "sh-key",
		"ANN_KEY": "ann-key-0123456789", "BOB_KEY": "bob-key-0123456789", "ADMIN_KEY": "admin-key-0123456789",
	}
	cfg, err := config.Load(filepath.Join("..", "..", "docs", "casetrail.example.yaml"), env(e))
	require.NoError(t, err)
	require.Empty(t, cfg.ReportDatabaseURL)
	require.NotEmpty(t, cfg.Sources)
}
