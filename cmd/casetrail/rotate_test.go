package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/casetrail/casetrail/internal/dbtest"
)

// TestRotateSigningKey walks the rotation an operator makes: a new key from
// keys --new, the old verifier key moved to log_previous_keys. The server
// with the new key signs on; verify, export and verify-bundle take the
// chain; a server left on the old key signs nothing more.
func TestRotateSigningKey(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	cfg := writeFile(t, testConfig)
	r := start(t, env, "serve", "--config", cfg)
	postOutboundCalls(t, r.addr, 3)
	r.stop(t)

	var out, errOut bytes.Buffer
	require.NoError(t, run(ctx, []string{"keys", "--config", cfg}, getenv, &out, io.Discard))
	oldKey := strings.TrimSpace(out.String())
	out.Reset()
	require.NoError(t, run(ctx, []string{"keys", "--new", "--config", cfg}, getenv, &out, &errOut))
	newSigner := strings.TrimSpace(out.String())
	require.True(t, strings.HasPrefix(newSigner, "PRIVATE+KEY+casetrail.local/log+"), newSigner)
	newKey := strings.TrimSpace(strings.TrimPrefix(errOut.String(), "verifier key:"))
	require.True(t, strings.HasPrefix(newKey, "casetrail.local/log+"), errOut.String())
	require.NotEqual(t, oldKey, newKey)

	env["LOG_KEY"] = newSigner
	rotated := writeFile(t, testConfig+fmt.Sprintf("log_signing_key: \"${LOG_KEY}\"\nlog_previous_keys: [%q]\n", oldKey))
	r = start(t, env, "serve", "--config", rotated)
	require.NotContains(t, strings.Join(readyWarnings(t, "http://"+r.addr), "\n"), "signs no checkpoints")
	postCall(t, r.addr, "after-rotation")
	r.stop(t)

	out.Reset()
	require.NoError(t, run(ctx, []string{"keys", "--all", "--config", rotated}, getenv, &out, io.Discard))
	require.Equal(t, oldKey+"\n"+newKey+"\n", out.String())
	out.Reset()
	require.NoError(t, run(ctx, []string{"verify", "--config", rotated}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 4 leaves")
	out.Reset()
	require.NoError(t, run(ctx, []string{"verify", "--config", rotated, "--key", oldKey, "--key", newKey}, getenv, &out, io.Discard), out.String())
	out.Reset()
	require.Error(t, run(ctx, []string{"verify", "--config", rotated, "--key", newKey}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "FAILED: ")
	require.Contains(t, out.String(), "none of those given")

	bundle := filepath.Join(t.TempDir(), "bundle")
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	require.NoError(t, run(ctx, []string{"export", "--config", rotated, "--from", from, "--to", to, "--out", bundle}, getenv, io.Discard, io.Discard))
	out.Reset()
	require.NoError(t, run(ctx, []string{"verify-bundle", "--config", rotated, bundle}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 4 events")
	out.Reset()
	require.NoError(t, run(ctx, []string{"verify-bundle", bundle}, getenv, &out, io.Discard), out.String())
	out.Reset()
	require.Error(t, run(ctx, []string{"verify-bundle", "--key", oldKey, bundle}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "FAILED")

	// A server left on the old key signs nothing more.
	r = start(t, env, "serve", "--config", cfg)
	require.Contains(t, strings.Join(readyWarnings(t, "http://"+r.addr), "\n"), "signs no checkpoints")
	r.stop(t)
}

// A mistake serve can find without the database is found before the
// migrations run: the schema is left as it was for the servers of the
// earlier version.
func TestServeChecksItsSettingsBeforeMigrating(t *testing.T) {
	t.Parallel()
	d := dbtest.NewEmpty(t)
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret", "BAD": "PRIVATE+KEY+x+1+abc"}
	getenv := func(k string) string { return env[k] }
	for setting, want := range map[string]string{
		"listen: \"127.0.0.1:99999\"\n":                              `listen "127.0.0.1:99999"`,
		"pprof_listen: \"localhost:http-nope\"\n":                    `pprof_listen "localhost:http-nope"`,
		"report_database_url: \"postgres://u:pw@h:99999/x\"\n":       "report_database_url: cannot parse the connection string: invalid port",
		"log_signing_key: \"${BAD}\"\n":                              "log signing key",
		"log_previous_keys: [\"casetrail.local/log+00000000+AQ\"]\n": "log_previous_keys",
	} {
		cfg := writeFile(t, strings.Replace(testConfig, "listen: \"127.0.0.1:0\"\n", "", 1)+setting)
		err := run(context.Background(), []string{"serve", "--config", cfg}, getenv, io.Discard, io.Discard)
		require.ErrorContains(t, err, want, setting)
		require.NotContains(t, err.Error(), "pw@", setting)
		var migrated bool
		require.NoError(t, d.Connect(t).QueryRow(context.Background(), "SELECT to_regclass('goose_db_version') IS NOT NULL").Scan(&migrated))
		require.False(t, migrated, "%s: nothing was migrated", setting)
	}
}
