package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// Acknowledged only once committed, before-* hooks too, unless the
	// configuration chooses the spool.
	require.Equal(t, "fail", cfg.BeforeHooksOnOutage)

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
		{"unset env", "sources:\n  - {name: cu, kind: case-updates, hmac_secret: \"${NOT_SET}\"}\n", nil, "line 2: sources[0].hmac_secret: environment variable NOT_SET is not set"},
		{"unknown setting", "sorces: []\n", nil, "line 1: sorces: unknown setting"},
		{"duplicate source", "sources:\n  - {name: a, kind: service-hooks, auth: none}\n  - {name: a, kind: service-hooks, auth: none}\n", nil, "name is used twice"},
		{"bad role", "read_keys:\n  - {name: eve, role: god, key: \"0123456789abcdef\"}\n", nil, `unknown role "god"`},
		{"short key", "read_keys:\n  - {name: eve, role: analyst, key: short}\n", nil, "at least 16 characters"},
		{"auth typo", "sources:\n  - {name: a, kind: service-hooks, auth: nope}\n", nil, `auth: "nope" is not understood`},
		{"bad duration", "shutdown_timeout: soon\n", nil, "line 1: shutdown_timeout: expected a duration"},
		{"bad yaml", "sources: [\n", nil, "yaml"},
		{"bad outage mode", "before_hooks_on_outage: maybe\n", nil, `"maybe" must be spool or fail`},
		{"unknown source setting", "sources:\n  - {name: a, kind: service-hooks, auth: none, hmac_secert: x}\n", nil, "line 2: sources[0].hmac_secert: unknown setting"},
		{"second document", "listen: a\n---\ndatabase_url: postgres://db/x\n", nil, "line 2: a second YAML document"},
		{"set twice", "listen: a\nmax_body_bytes: 2048\nlisten: b\n", nil, "line 3: listen: set twice (also on line 1)"},
		{"list for a setting", "listen: [a, b]\n", nil, "line 1: listen: expected a single value, not a list"},
		{"not a mapping", "- listen\n", nil, "line 1: the file: expected a mapping of settings, not a list"},
		{"negative sequence interval", "sequence_interval: -1s\n", nil, "sequence_interval: -1s is negative"},
		{"negative checkpoint interval", "checkpoint_interval: -10m\n", nil, "checkpoint_interval: -10m0s is negative"},
		{"negative parallel batch", "commit_parallel_batch: -1\n", nil, "commit_parallel_batch: -1 is out of range (at least 1)"},
		{"country code with a trunk 0", "phone_default_country_code: \"044\"\n", nil, "phone_default_country_code: \"044\" must be a calling code of 1 to 3 digits"},
		{"country code too long", "phone_default_country_code: \"4444\"\n", nil, "phone_default_country_code: \"4444\" must be a calling code"},
		{"country code not digits", "phone_default_country_code: uk\n", nil, "phone_default_country_code: \"uk\" must be a calling code"},
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
	cfg, err := config.Load(filepath.Join("..", "..", "docs", "casetrail.example.yaml"), env(exampleEnv))
	require.NoError(t, err)
	require.Empty(t, cfg.ReportDatabaseURL)
	require.NotEmpty(t, cfg.Sources)
	require.Equal(t, "fail", cfg.BeforeHooksOnOutage, "the example shows the default")
}

// TestEnvironmentValuesNotInErrors: a value read from the environment is
// never quoted in an error, not even in part (the yaml library quotes the
// start of a value it cannot decode), while the error still names the
// setting, its line and the variable.
func TestEnvironmentValuesNotInErrors(t *testing.T) {
	t.Parallel()
	const secret = "Zq8vKx3WpL0mYt7RbN4c"
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"string for a list", "sources:\n  - name: sh\n    kind: service-hooks\n    api_keys: \"${SECRET}\"\n",
			[]string{"line 4", "sources[0].api_keys", "a list", "${SECRET}"}},
		{"string for a number", "max_body_bytes: ${SECRET}\n",
			[]string{"line 1", "max_body_bytes", "a whole number", "${SECRET}"}},
		{"string for a duration", "shutdown_timeout: ${SECRET}\n",
			[]string{"line 1", "shutdown_timeout", "a duration", "${SECRET}"}},
		{"string for a switch", "group_commit: ${SECRET}\n",
			[]string{"line 1", "group_commit", "true or false", "${SECRET}"}},
		{"list for a secret", "sources:\n  - {name: cu, kind: case-updates, hmac_secret: [\"${SECRET}\"]}\n",
			[]string{"line 2", "sources[0].hmac_secret", "a single value"}},
		{"unknown kind", "sources:\n  - {name: cu, kind: \"${SECRET}\", hmac_secret: x}\n",
			[]string{"sources[0] (cu)", "unknown kind", "${SECRET}"}},
		{"unknown role", "read_keys:\n  - {name: ann, role: \"${SECRET}\", key: 0123456789abcdef}\n",
			[]string{"read_keys[0] (ann)", "unknown role", "${SECRET}"}},
		{"unknown outage mode", "before_hooks_on_outage: \"${SECRET}\"\n",
			[]string{"before_hooks_on_outage", "${SECRET}", "must be spool or fail"}},
		{"source name", "sources:\n  - {name: \"${SECRET}\", kind: service-hooks}\n",
			[]string{"sources[0] (${SECRET})", "no credentials"}},
		{"bad log origin", "log_origin: \"a b ${SECRET}\"\n",
			[]string{"log_origin", "${SECRET}", "may not contain"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(writeConfig(t, tc.yaml), env(map[string]string{"SECRET": secret}))
			require.Error(t, err)
			msg := err.Error()
			for i := 0; i+6 <= len(secret); i++ {
				require.NotContains(t, msg, secret[i:i+6], "a part of the secret is in %q", msg)
			}
			for _, w := range tc.want {
				require.Contains(t, msg, w)
			}
		})
	}
}

// TestEnvironmentValuesDecodeAsWritten: a number or a switch may come from
// the environment, and a secret that looks like a number stays text.
func TestEnvironmentValuesDecodeAsWritten(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(writeConfig(t, `
max_body_bytes: ${BODY}
group_commit: ${GROUP}
shutdown_timeout: ${WAIT}
sources:
  - name: cu
    kind: case-updates
    hmac_secret: ${NUMERIC}
`), env(map[string]string{"BODY": "4096", "GROUP": "false", "WAIT": "5s", "NUMERIC": "0x10"}))
	require.NoError(t, err)
	require.EqualValues(t, 4096, cfg.MaxBodyBytes)
	require.False(t, *cfg.GroupCommit)
	require.Equal(t, config.Duration(5*time.Second), cfg.ShutdownTimeout)
	require.Equal(t, "0x10", cfg.Sources[0].HMACSecret)
}

// TestAnchorsAndMerges: YAML anchors, aliases and merge keys work, and a key
// written beside a merge wins over the merged one.
func TestAnchorsAndMerges(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(writeConfig(t, `
sources:
  - &hooks {name: a, kind: service-hooks, api_keys: ["${K}"]}
  - {<<: *hooks, name: b, api_keys: [b-key]}
  - name: c
    <<: [*hooks]
    api_keys: [other-key]
`), env(map[string]string{"K": "hook-key"}))
	require.NoError(t, err)
	require.Len(t, cfg.Sources, 3)
	require.Equal(t, config.Source{Name: "a", Kind: "service-hooks", APIKeys: []string{"hook-key"}}, cfg.Sources[0])
	require.Equal(t, config.Source{Name: "b", Kind: "service-hooks", APIKeys: []string{"b-key"}}, cfg.Sources[1])
	require.Equal(t, config.Source{Name: "c", Kind: "service-hooks", APIKeys: []string{"other-key"}}, cfg.Sources[2])
}

// TestEnvironmentOverrideValuesNotInErrors: a setting overridden by an
// environment variable is named by that variable in messages.
func TestEnvironmentOverrideValuesNotInErrors(t *testing.T) {
	t.Parallel()
	path := writeConfig(t, "max_body_bytes: 4096\n")
	_, err := config.Load(path, env(map[string]string{"CASETRAIL_MAX_BODY_BYTES": "123"}))
	require.ErrorContains(t, err, "max_body_bytes: CASETRAIL_MAX_BODY_BYTES is too small")
	// The message past the file's name (a temporary directory, whose
	// random name may hold the digits) does not give the value.
	require.NotContains(t, strings.ReplaceAll(err.Error(), path, ""), "123")
	_, err = config.Load(writeConfig(t, "max_body_bytes: 4096\n"), env(map[string]string{"CASETRAIL_MAX_BODY_BYTES": "Zq8vKx3WpL"}))
	require.EqualError(t, err, "CASETRAIL_MAX_BODY_BYTES is not a number of bytes")
}

// TestCredentialsAKindDoesNotUse: a credential setting that a source's kind
// never checks is refused, naming the source and the setting, rather than
// accepted and ignored.
func TestCredentialsAKindDoesNotUse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, source, want string
	}{
		{"hooks with hmac_secret", `{name: sh, kind: service-hooks, api_keys: [k], hmac_secret: "${S}"}`,
			"sources[0] (sh): hmac_secret: not used by a service-hooks source"},
		{"hooks with only hmac_secret", `{name: sh, kind: service-hooks, hmac_secret: "${S}"}`,
			"sources[0] (sh): hmac_secret: not used by a service-hooks source"},
		{"hooks with hmac_secrets", `{name: sh, kind: service-hooks, api_keys: [k], hmac_secrets: ["${S}"]}`,
			"sources[0] (sh): hmac_secrets: not used by a service-hooks source"},
		{"hooks with a header", `{name: sh, kind: service-hooks, api_keys: [k], auth_header: x-token, auth_secret: "${S}"}`,
			"sources[0] (sh): auth_header, auth_secret: not used by a service-hooks source"},
		{"actions with a header", `{name: sa, kind: service-actions, hmac_secret: h, auth_header: x-token, auth_secret: "${S}"}`,
			"sources[0] (sa): auth_header, auth_secret: not used by a service-actions source"},
		{"actions with api_keys", `{name: sa, kind: service-actions, hmac_secret: h, api_keys: ["${S}"]}`,
			"sources[0] (sa): api_keys: not used by a service-actions source"},
		{"case updates with api_keys", `{name: cu, kind: case-updates, hmac_secret: h, api_keys: ["${S}"]}`,
			"sources[0] (cu): api_keys: not used by a case-updates source"},
		{"auth none with a header", `{name: cu, kind: case-updates, auth: none, auth_header: x-token}`,
			"sources[0] (cu): auth: none, but credentials are configured too"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(writeConfig(t, "sources:\n  - "+tc.source+"\n"), env(map[string]string{"S": "Zq8vKx3WpL0mYt7RbN4c"}))
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "Zq8vKx")
		})
	}
	// What each kind does check is still accepted.
	_, err := config.Load(writeConfig(t, `
sources:
  - {name: cu, kind: case-updates, hmac_secret: a, auth_header: x-token, auth_secret: b}
  - {name: sa, kind: service-actions, hmac_secret: c}
  - {name: sh, kind: service-hooks, api_keys: [d, e]}
`), env(nil))
	require.NoError(t, err)
}

// TestHMACSecretsForRotation: a signing secret is rotated by listing the
// old and the new one in hmac_secrets, alone or beside hmac_secret; an
// empty one is refused, like an empty api key.
func TestHMACSecretsForRotation(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(writeConfig(t, `
sources:
  - {name: cu, kind: case-updates, hmac_secret: "${OLD_CU}", hmac_secrets: ["${NEW_CU}"]}
  - {name: sa, kind: service-actions, hmac_secrets: ["${OLD_SA}", "${NEW_SA}"]}
`), env(map[string]string{"OLD_CU": "cu-old", "NEW_CU": "cu-new", "OLD_SA": "sa-old", "NEW_SA": "sa-new"}))
	require.NoError(t, err)
	cu, _ := cfg.Source("cu")
	require.Equal(t, []string{"cu-old", "cu-new"}, cu.HMACKeys())
	sa, _ := cfg.Source("sa")
	require.Equal(t, []string{"sa-old", "sa-new"}, sa.HMACKeys())

	_, err = config.Load(writeConfig(t, "sources:\n  - {name: sa, kind: service-actions, hmac_secrets: [a, \"\"]}\n"), env(nil))
	require.ErrorContains(t, err, "sources[0] (sa): hmac_secrets[1] is empty")
	_, err = config.Load(writeConfig(t, "sources:\n  - {name: sa, kind: service-actions, hmac_secrets: []}\n"), env(nil))
	require.ErrorContains(t, err, "sources[0] (sa): no credentials")
}

// TestAuthSecretsForRotation: a header secret is rotated by listing the
// old and the new one, in auth_secret and auth_secrets or in auth_secrets
// alone, always with the header they go in.
func TestAuthSecretsForRotation(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(writeConfig(t, `
sources:
  - {name: cu, kind: case-updates, auth_header: x-token, auth_secret: old-token, auth_secrets: [new-token]}
  - {name: cu2, kind: case-updates, auth_header: x-token, auth_secrets: [a-token, b-token]}
`), env(nil))
	require.NoError(t, err)
	cu, _ := cfg.Source("cu")
	require.Equal(t, []string{"old-token", "new-token"}, cu.HeaderKeys())
	for source, want := range map[string]string{
		`{name: cu, kind: case-updates, auth_secrets: [a-token]}`:                    "auth_header and auth_secret (or auth_secrets) go together",
		`{name: cu, kind: case-updates, auth_header: x-token, auth_secrets: [""]}`:   "auth_secrets[0] is empty",
		`{name: cu, kind: case-updates, auth_header: x-token, auth_secrets: [" a"]}`: "auth_secrets[0] begins or ends with white space",
		`{name: sh, kind: service-hooks, api_keys: [k], auth_secrets: [a-token]}`:    "auth_secrets: not used by a service-hooks source",
	} {
		_, err := config.Load(writeConfig(t, "sources:\n  - "+source+"\n"), env(nil))
		require.ErrorContains(t, err, want, source)
	}
}

// TestIngestSecretIsNotAReadKey: no ingest credential may also be a read
// key, whichever setting holds it.
func TestIngestSecretIsNotAReadKey(t *testing.T) {
	t.Parallel()
	const readKeys = "read_keys:\n  - {name: ann, role: analyst, key: \"${K}\"}\n"
	for _, source := range []string{
		`{name: cu, kind: case-updates, hmac_secret: "${K}"}`,
		`{name: cu, kind: case-updates, auth_header: x-token, auth_secret: "${K}"}`,
		`{name: cu, kind: case-updates, auth_header: Authorization, auth_secret: "Bearer ${K}"}`,
		`{name: sa, kind: service-actions, hmac_secret: "${K}"}`,
		`{name: sa, kind: service-actions, hmac_secrets: [other, "${K}"]}`,
		`{name: sh, kind: service-hooks, api_keys: [other, "${K}"]}`,
	} {
		_, err := config.Load(writeConfig(t, "sources:\n  - "+source+"\n"+readKeys), env(map[string]string{"K": "Zq8vKx3WpL0mYt7RbN4c"}))
		require.ErrorContains(t, err, "is also the key of read_keys[0] (ann); ingest and read credentials must differ", source)
		require.Contains(t, err.Error(), "sources[0] (", source)
		require.NotContains(t, err.Error(), "Zq8vKx", source)
	}
}

// TestSourcesDoNotShareCredentials: a credential of one source may not be
// one of another's, whichever settings hold it; within one source it may.
func TestSourcesDoNotShareCredentials(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{
		{`{name: cu, kind: case-updates, hmac_secret: "${K}"}`, `{name: sa, kind: service-actions, hmac_secret: "${K}"}`},
		{`{name: cu, kind: case-updates, auth_header: x-token, auth_secret: "${K}"}`, `{name: sh, kind: service-hooks, api_keys: [other, "${K}"]}`},
		{`{name: sh1, kind: service-hooks, api_keys: ["${K}"]}`, `{name: sh2, kind: service-hooks, api_keys: ["${K}"]}`},
	} {
		_, err := config.Load(writeConfig(t, "sources:\n  - "+pair[0]+"\n  - "+pair[1]+"\n"), env(map[string]string{"K": "Zq8vKx3WpL0mYt7RbN4c"}))
		require.ErrorContains(t, err, "is also a credential of sources[0] (", pair[1])
		require.Contains(t, err.Error(), "sources[1] (", pair[1])
		require.NotContains(t, err.Error(), "Zq8vKx", pair[1])
	}
	_, err := config.Load(writeConfig(t, `
sources:
  - {name: cu, kind: case-updates, hmac_secret: "${K}", auth_header: x-token, auth_secret: "${K}"}
  - {name: sh, kind: service-hooks, api_keys: [a, a]}
`), env(map[string]string{"K": "Zq8vKx3WpL0mYt7RbN4c"}))
	require.NoError(t, err)
}

// TestWarnings: a configuration that can neither take events nor answer
// reads starts, with a warning; one that does either has none.
func TestWarnings(t *testing.T) {
	t.Parallel()
	for yaml, want := range map[string]int{
		"listen: \":8080\"\n": 1,
		"sources:\n  - {name: sh, kind: service-hooks, auth: none}\n":         0,
		"read_keys:\n  - {name: ann, role: analyst, key: 0123456789abcdef}\n": 0,
		"sources: []\nread_keys: []\n":                                        1,
	} {
		cfg, err := config.Load(writeConfig(t, yaml), env(nil))
		require.NoError(t, err, yaml)
		require.Len(t, cfg.Warnings(), want, yaml)
		if want > 0 {
			require.Contains(t, cfg.Warnings()[0], "no sources and no read_keys")
		}
	}
	cfg, err := config.Load("", env(map[string]string{"CASETRAIL_DATA_DIR": t.TempDir()}))
	require.NoError(t, err)
	_, err = cfg.UseDevCredentials()
	require.NoError(t, err)
	require.Empty(t, cfg.Warnings(), "development mode has sources and read keys")
}

// TestHeaderCredentialsAsRequestsCarryThem: a key sent in a header cannot
// begin or end with white space (HTTP drops it) nor hold a control
// character, so one that does, such as a secret file's line break read
// into the environment, is refused rather than failing every request.
func TestHeaderCredentialsAsRequestsCarryThem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ yaml, want string }{
		{"sources:\n  - {name: sh, kind: service-hooks, api_keys: [\"${K}\"]}\n", "sources[0] (sh): api_keys[0]"},
		{"sources:\n  - {name: cu, kind: case-updates, auth_header: x-token, auth_secret: \"${K}\"}\n", "sources[0] (cu): auth_secret"},
		{"read_keys:\n  - {name: ann, role: analyst, key: \"${K}\"}\n", "read_keys[0] (ann): key"},
	} {
		for _, v := range []string{"Zq8vKx3WpL0mYt7RbN4c\n", " Zq8vKx3WpL0mYt7RbN4c", "Zq8vKx3WpL0m\rYt7RbN4c"} {
			_, err := config.Load(writeConfig(t, tc.yaml), env(map[string]string{"K": v}))
			require.ErrorContains(t, err, tc.want, "%s %q", tc.yaml, v)
			require.NotContains(t, err.Error(), "Zq8vKx")
		}
	}
	// A signing secret is used as it is, white space included.
	_, err := config.Load(writeConfig(t, "sources:\n  - {name: cu, kind: case-updates, hmac_secret: \"${K}\"}\n"),
		env(map[string]string{"K": "Zq8vKx3WpL0mYt7RbN4c\n"}))
	require.NoError(t, err)
}

// auth_header names a header a request can carry the secret in.
func TestAuthHeaderIsAHeaderName(t *testing.T) {
	t.Parallel()
	for _, h := range []string{"bad header", "x-token:", "host", "Transfer-Encoding"} {
		_, err := config.Load(writeConfig(t, fmt.Sprintf("sources:\n  - {name: cu, kind: case-updates, auth_header: %q, auth_secret: s3cret-value}\n", h)), env(nil))
		require.ErrorContains(t, err, "auth_header", h)
		require.NotContains(t, err.Error(), "s3cret-value")
	}
	_, err := config.Load(writeConfig(t, "sources:\n  - {name: cu, kind: case-updates, auth_header: X-Webhook-Token, auth_secret: s3cret-value}\n"), env(nil))
	require.NoError(t, err)
}

// An empty document after the settings (a trailing "---") holds nothing
// that would be lost.
func TestTrailingEmptyDocument(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load(writeConfig(t, "---\nlisten: a\n---\n"), env(nil))
	require.NoError(t, err)
	require.Equal(t, "a", cfg.Listen)
}

// LoadLog reads what names the log and its key, without the secrets the
// file reads from the environment, which an auditor checking a bundle does
// not hold; a ${NAME} in the log's own settings is still required.
func TestLoadLogNeedsOnlyTheLogSettings(t *testing.T) {
	t.Parallel()
	example := filepath.Join("..", "..", "docs", "casetrail.example.yaml")
	full, err := config.Load(example, env(exampleEnv))
	require.NoError(t, err)
	_, err = config.Load(example, env(nil))
	require.Error(t, err, "the server needs every secret")
	logOnly, err := config.LoadLog(example, env(nil))
	require.NoError(t, err)
	require.Equal(t, full.LogOrigin, logOnly.LogOrigin)
	require.Equal(t, full.DataDir, logOnly.DataDir)
	require.Empty(t, logOnly.Sources[0].HMACSecret)

	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("log_origin: audit.example/log\nlog_signing_key: \"${LOG_KEY}\"\n"), 0o600))
	_, err = config.LoadLog(path, env(nil))
	require.ErrorContains(t, err, "LOG_KEY")
	cfg, err := config.LoadLog(path, env(map[string]string{"LOG_KEY": "PRIVATE+KEY+x"}))
	require.NoError(t, err)
	require.Equal(t, "audit.example/log", cfg.LogOrigin)
	require.Equal(t, "PRIVATE+KEY+x", cfg.LogSigningKey)
}
