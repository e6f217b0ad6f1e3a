package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/casetrail/casetrail/internal/dbtest"
	"github.com/casetrail/casetrail/internal/ledger"
	"github.com/casetrail/casetrail/internal/spool"
	"github.com/casetrail/casetrail/internal/store"
)

func TestMain(m *testing.M) {
	if os.Getenv("CASETRAIL_TEST_RUN_MAIN") == "1" {
		// The test binary as casetrail itself, for what only a process of
		// its own shows (signals).
		main()
		os.Exit(0)
	}
	dbtest.Main(m)
}

// running is a casetrail process started through run().
type running struct {
	addr   string
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
}

func (r *running) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stdout.String()
}

// logged is what the process wrote to stderr so far.
func (r *running) logged() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stderr.String()
}

type stderrWriter struct{ r *running }

func (w stderrWriter) Write(p []byte) (int, error) {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	return w.r.stderr.Write(p)
}

var listening = regexp.MustCompile(`casetrail listening on http://(\S+)`)

// start runs `casetrail args...` and waits for it to print its address.
func start(t *testing.T, env map[string]string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	r := &running{cancel: cancel, done: make(chan error, 1)}
	getenv := func(k string) string { return env[k] }
	go func() {
		err := run(ctx, args, getenv, pw, io.MultiWriter(testWriter{t}, stderrWriter{r}))
		pw.Close()
		r.done <- err
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			r.stdout.WriteString(line + "\n")
			r.mu.Unlock()
			if m := listening.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case r.addr = <-addr:
	case err := <-r.done:
		t.Fatalf("casetrail exited before listening: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	require.NoError(t, <-r.done)
	r.done <- nil // for the cleanup
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "casetrail.yaml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

const testConfig = `
listen: "127.0.0.1:0"
sources:
  - {name: hooks, kind: service-hooks, api_keys: ["${HOOK_KEY}"]}
  - {name: cases, kind: case-updates, hmac_secret: "${CV_SECRET}"}
`

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode
}

// readyWarnings asks /readyz, requires 200, and returns its warnings but the
// one of the test server's fsync=off.
func readyWarnings(t *testing.T, base string) []string {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	var out struct {
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	var rest []string
	for _, w := range out.Warnings {
		if !strings.Contains(w, "fsync=off") {
			rest = append(rest, w)
		}
	}
	return rest
}

func TestServeUsesDatabaseURL(t *testing.T) {
	t.Parallel()
	d := dbtest.NewEmpty(t)
	dataDir := t.TempDir()
	env := map[string]string{
		"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": dataDir,
		"HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret",
	}
	r := start(t, env, "serve", "--config", writeFile(t, testConfig))
	require.Equal(t, 200, httpStatus(t, "http://"+r.addr+"/healthz"))
	require.Equal(t, 200, httpStatus(t, "http://"+r.addr+"/readyz"), "serve migrated the empty database")
	// The throw-away test server runs with fsync=off: readyz says so.
	res, err := http.Get("http://" + r.addr + "/readyz")
	require.NoError(t, err)
	ready, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Contains(t, string(ready), "fsync=off")
	_, err = os.Stat(filepath.Join(dataDir, "pgdata"))
	require.ErrorIs(t, err, os.ErrNotExist, "no local PostgreSQL was started")
	require.NotContains(t, r.output(), "hook-key", "secrets are not printed")
	r.stop(t)

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"migrate", "status"}, func(k string) string { return env[k] }, &out, io.Discard))
	require.Contains(t, out.String(), "00001_events.sql")
	require.Contains(t, out.String(), "applied")
}

func TestServeRefusesBadConfiguration(t *testing.T) {
	t.Parallel()
	cases := map[string]struct{ yaml, want string }{
		"unknown kind":       {"sources:\n  - {name: x, kind: fax, auth: none}\n", `unknown kind "fax"`},
		"no credentials":     {"sources:\n  - {name: x, kind: service-actions}\n", "no credentials"},
		"unset env variable": {"sources:\n  - {name: x, kind: service-hooks, api_keys: [\"${MISSING_KEY}\"]}\n", "MISSING_KEY is not set"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := run(context.Background(), []string{"serve", "--config", writeFile(t, tc.yaml)},
				func(string) string { return "" }, io.Discard, io.Discard)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
	require.Error(t, run(context.Background(), []string{"frobnicate"}, os.Getenv, io.Discard, io.Discard))
}

func TestServeDevModeKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	dataDir, err := os.MkdirTemp("", "casetrail-dev-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dataDir) })
	env := map[string]string{"CASETRAIL_DATA_DIR": dataDir, "CASETRAIL_LISTEN": "127.0.0.1:0"}

	r := start(t, env, "serve")
	require.Equal(t, 200, httpStatus(t, "http://"+r.addr+"/readyz"))
	key := regexp.MustCompile(`x-api-key: (\S+)`).FindStringSubmatch(r.output())
	require.NotNil(t, key, "development credentials are printed:\n%s", r.output())
	body := []byte(`{"agentID":"a1","targetPhoneNumber":"+14155550100","Timestamp":"2024-01-01T00:00:00Z"}`)
	first := postHook(t, r.addr, "service-hooks", key[1], body)
	require.False(t, first.Duplicate)

	// A command run beside the server uses its PostgreSQL and leaves it
	// running for the server.
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"migrate", "status"}, func(k string) string { return env[k] }, &out, io.Discard))
	require.Contains(t, out.String(), "applied")
	require.Equal(t, 200, httpStatus(t, "http://"+r.addr+"/readyz"), "the server's database is still up")
	second := postHook(t, r.addr, "service-hooks", key[1],
		[]byte(`{"agentID":"a2","targetPhoneNumber":"+14155550100","Timestamp":"2024-01-01T00:05:00Z"}`))
	require.False(t, second.Duplicate)
	r.stop(t)

	// The second start reuses the data directory, credentials and events.
	r2 := start(t, env, "serve")
	require.Contains(t, r2.output(), key[1])
	again := postHook(t, r2.addr, "service-hooks", key[1], body)
	require.True(t, again.Duplicate, "the event stored before the restart is still there")
	require.Equal(t, first.ID, again.ID)
	r2.stop(t)
	_, err = os.Stat(filepath.Join(dataDir, "pgdata", "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "the local PostgreSQL was stopped")
}

type ingested struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate"`
}

// postHook delivers an outbound call to the service-hooks source named
// source and requires a 200.
func postHook(t *testing.T, addr, source, key string, body []byte) ingested {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/ingest/"+source+"/outbound-call", bytes.NewReader(body))
	req.Header.Set("x-api-key", key)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	var out ingested
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return out
}

// TestGracefulShutdownFinishesInFlightRequest stops the server while a
// request's body is still arriving; that request must still be stored and
// answered 200.
func TestGracefulShutdownFinishesInFlightRequest(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	r := start(t, env, "serve", "--config", writeFile(t, testConfig))

	body := []byte(`{"event":"CHANGE_CASE_STATUS","payload":{"changeStatus":{"caseId":"c-1","oldStatus":"Open","newStatus":"Closed"}}}`)
	mac := hmac.New(sha256.New, []byte("cv-secret"))
	mac.Write(body)

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/v1/ingest/cases", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("x-cv-signature", hex.EncodeToString(mac.Sum(nil)))
	// The server answers 100 Continue only once the handler reads the body:
	// the request is then in flight.
	req.Header.Set("Expect", "100-continue")
	inFlight := make(chan struct{})
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		Got100Continue: func() { close(inFlight) },
	}))
	client := &http.Client{Transport: &http.Transport{ExpectContinueTimeout: time.Minute}}
	type result struct {
		status int
		body   []byte
		err    error
	}
	resc := make(chan result, 1)
	go func() {
		res, err := client.Do(req)
		if err != nil {
			resc <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		resc <- result{status: res.StatusCode, body: b}
	}()
	<-inFlight
	pw.Write(body[:10]) //nolint:errcheck

	r.cancel() // SIGTERM
	// Once the listener is closed, no new connection gets in...
	for {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			break
		}
		c.Close()
	}
	// ...but the request already in flight completes.
	pw.Write(body[10:]) //nolint:errcheck
	pw.Close()
	res := <-resc
	require.NoError(t, res.err)
	require.Equal(t, 200, res.status, string(res.body))
	require.NoError(t, <-r.done, "clean exit after draining")
	r.done <- nil

	var got ingested
	require.NoError(t, json.Unmarshal(res.body, &got))
	require.NotEmpty(t, got.ID)
}

// On SIGTERM with a shutdown_delay, the server serves on with /readyz
// answering 503 draining, so that a load balancer takes it out before it
// stops taking connections.
func TestShutdownDelayShowsDraining(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	r := start(t, env, "serve", "--config", writeFile(t, testConfig+"shutdown_delay: 3s\n"))
	ready := func() (int, string) {
		res, err := http.Get("http://" + r.addr + "/readyz")
		require.NoError(t, err, "the server still takes connections while draining")
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(body)
	}
	status, _ := ready()
	require.Equal(t, http.StatusOK, status)
	r.cancel()
	for {
		status, body := ready()
		if status == http.StatusServiceUnavailable {
			require.Contains(t, body, "draining")
			break
		}
		require.Equal(t, http.StatusOK, status)
	}
	require.NoError(t, <-r.done)
	r.done <- nil // for the cleanup
	require.Contains(t, r.logged(), "/readyz says draining")
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	dataDir := t.TempDir()
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": dataDir, "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	getenv := func(k string) string { return env[k] }
	cfg := writeFile(t, testConfig)
	// Before the log has a checkpoint, keys prints the key the server will
	// sign its first one with.
	logKeys, err := ledger.LoadKeys("", dataDir, "casetrail.local/log")
	require.NoError(t, err)
	var keyOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"keys", "--config", cfg}, getenv, &keyOut, io.Discard))
	require.Equal(t, logKeys.VerifierKey+"\n", keyOut.String())

	r := start(t, env, "serve", "--config", cfg)
	ids := postOutboundCalls(t, r.addr, 5)
	r.stop(t) // sequences and signs what was acknowledged

	keyOut.Reset()
	require.NoError(t, run(context.Background(), []string{"keys", "--config", cfg}, getenv, &keyOut, io.Discard))
	require.Regexp(t, `^casetrail\.local/log\+[0-9a-f]{8}\+\S+\n$`, keyOut.String())
	require.Equal(t, logKeys.VerifierKey+"\n", keyOut.String())

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"verify", "--config", cfg}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 5 leaves")

	// An audit bundle verifies offline with only the public key; one
	// changed byte anywhere in it fails.
	bundle := filepath.Join(t.TempDir(), "bundle")
	out.Reset()
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	require.NoError(t, run(context.Background(), []string{"export", "--config", cfg, "--from", from, "--to", to, "--out", bundle}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "exported 5 events")
	vkey := strings.TrimSpace(keyOut.String())
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 5 events")

	// --config trusts the key of that server instead of the bundle's own
	// key.txt: another server's key fails the bundle, and a server with no
	// key yet is an error, not a new key.
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"verify-bundle", "--config", cfg, bundle}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 5 events")
	// An auditor's machine holds the server's file, not the ingest secrets
	// it reads from the environment: they are not needed to trust its key.
	out.Reset()
	auditorEnv := map[string]string{"CASETRAIL_DATA_DIR": env["CASETRAIL_DATA_DIR"]}
	require.NoError(t, run(context.Background(), []string{"verify-bundle", "--config", cfg, bundle}, func(k string) string { return auditorEnv[k] }, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 5 events")
	otherDir := t.TempDir()
	otherEnv := maps.Clone(env)
	otherEnv["CASETRAIL_DATA_DIR"] = otherDir
	_, err = ledger.LoadKeys("", otherDir, "casetrail.local/log")
	require.NoError(t, err)
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify-bundle", "--config", cfg, bundle}, func(k string) string { return otherEnv[k] }, &out, io.Discard))
	require.Contains(t, out.String(), "FAILED")
	emptyDir := t.TempDir()
	otherEnv["CASETRAIL_DATA_DIR"] = emptyDir
	err = run(context.Background(), []string{"verify-bundle", "--config", cfg, bundle}, func(k string) string { return otherEnv[k] }, &out, io.Discard)
	require.ErrorIs(t, err, ledger.ErrNoKey)
	// Neither do keys, export nor expunge make a key, and they refuse
	// another server's key: an auditor given it, a bundle or an expunge
	// record signed with it would verify against nothing the log holds.
	emptyEnv := func(k string) string { return otherEnv[k] }
	require.ErrorIs(t, run(context.Background(), []string{"keys", "--config", cfg}, emptyEnv, &out, io.Discard), ledger.ErrNoKey)
	require.ErrorIs(t, run(context.Background(), []string{"export", "--config", cfg, "--from", from, "--to", to, "--out", t.TempDir()}, emptyEnv, &out, io.Discard), ledger.ErrNoKey)
	require.ErrorIs(t, run(context.Background(), []string{"expunge", "--config", cfg, "--event", ids[0], "--reason", "r"}, emptyEnv, &out, io.Discard), ledger.ErrNoKey)
	entries, err := os.ReadDir(emptyDir)
	require.NoError(t, err)
	require.Empty(t, entries, "no key was made")
	otherEnv["CASETRAIL_DATA_DIR"] = otherDir
	require.ErrorIs(t, run(context.Background(), []string{"export", "--config", cfg, "--from", from, "--to", to, "--out", t.TempDir()}, emptyEnv, &out, io.Discard), ledger.ErrForeignKey)
	require.ErrorIs(t, run(context.Background(), []string{"expunge", "--config", cfg, "--event", ids[0], "--reason", "r"}, emptyEnv, &out, io.Discard), ledger.ErrForeignKey)
	out.Reset()
	require.ErrorIs(t, run(context.Background(), []string{"keys", "--config", cfg}, emptyEnv, &out, io.Discard), ledger.ErrForeignKey)
	require.Empty(t, out.String(), "no key printed")
	var warn bytes.Buffer
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"verify-bundle", bundle}, func(string) string { return "" }, &out, &warn), out.String())
	require.Contains(t, warn.String(), "the bundle's own key.txt")
	// A configuration names its log: a bundle or store whose checkpoint
	// names another (signed with a shared key) is not taken for it.
	otherLog := writeFile(t, testConfig+"log_origin: \"other.example/log\"\n")
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify-bundle", "--config", otherLog, bundle}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), `not of "other.example/log"`)
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify", "--config", otherLog}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), `not of "other.example/log"`)
	out.Reset()
	require.ErrorIs(t, run(context.Background(), []string{"keys", "--config", otherLog}, getenv, &out, io.Discard), ledger.ErrForeignLog)
	require.Empty(t, out.String(), "no key printed")
	require.ErrorIs(t, run(context.Background(), []string{"export", "--config", otherLog, "--from", from, "--to", to, "--out", t.TempDir()}, getenv, &out, io.Discard), ledger.ErrForeignLog)

	for _, file := range []string{filepath.Join("bodies", ids[2]), "events.ndjson", "checkpoint.txt"} {
		path := filepath.Join(bundle, file)
		orig, err := os.ReadFile(path)
		require.NoError(t, err)
		changed := bytes.Clone(orig)
		i := bytes.IndexAny(changed, "0123456789")
		changed[i] = '0' + (changed[i]-'0'+1)%10
		require.NoError(t, os.WriteFile(path, changed, 0o600))
		out.Reset()
		require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard), file)
		require.Contains(t, out.String(), "FAILED", file)
		require.NoError(t, os.WriteFile(path, orig, 0o600))
	}

	// The manifest says which events the bundle holds: a line dropped or
	// repeated is found; a blank line is not an event.
	events := filepath.Join(bundle, "events.ndjson")
	orig, err := os.ReadFile(events)
	require.NoError(t, err)
	lines := bytes.SplitAfter(orig, []byte("\n"))
	for name, changed := range map[string][]byte{
		"dropped":  bytes.Join(append(slices.Clone(lines[:1]), lines[2:]...), nil),
		"repeated": append(bytes.Clone(orig), lines[0]...),
	} {
		require.NoError(t, os.WriteFile(events, changed, 0o600))
		out.Reset()
		require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard), name)
		require.Contains(t, out.String(), "FAILED", name)
	}
	// What a leaf commits to besides the body (credential, summary, actor,
	// changes, reply) travels beside it and is checked: changed or left out,
	// it fails.
	var first map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(lines[0], &first))
	require.Contains(t, string(first["detail"]), `"credential":"api-key:`)
	for name, detail := range map[string]json.RawMessage{
		"summary changed": bytes.Replace(first["detail"], []byte(`"summary":"`), []byte(`"summary":"Not `), 1),
		"detail left out": nil,
	} {
		line := maps.Clone(first)
		if detail == nil {
			delete(line, "detail")
		} else {
			line["detail"] = detail
		}
		raw, err := json.Marshal(line)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(events, append(append(raw, '\n'), bytes.Join(lines[1:], nil)...), 0o600))
		out.Reset()
		require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard), name)
		require.Contains(t, out.String(), "its detail", name)
	}
	require.NoError(t, os.WriteFile(events, append(bytes.Clone(orig), '\n'), 0o600))
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "complete:")

	// The manifest is signed with the log's key: an event taken out of the
	// bundle and its manifest both, or the manifest changed or removed
	// alone, is found. Without its signature (a bundle of an earlier
	// version) the events still verify, but it is not called complete.
	manifest := filepath.Join(bundle, "manifest.json")
	origManifest, err := os.ReadFile(manifest)
	require.NoError(t, err)
	var mf ledger.Manifest
	require.NoError(t, json.Unmarshal(origManifest, &mf))
	var firstLeaf struct {
		Leaf struct {
			EventID int64 `json:"id"`
		} `json:"leaf"`
	}
	require.NoError(t, json.Unmarshal(lines[0], &firstLeaf))
	require.Equal(t, strconv.FormatInt(firstLeaf.Leaf.EventID, 10), mf.EventIDs[0])
	mf.EventIDs = mf.EventIDs[1:]
	cut, err := json.MarshalIndent(mf, "", "  ")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(events, bytes.Join(lines[1:], nil), 0o600))
	require.NoError(t, os.WriteFile(manifest, append(cut, '\n'), 0o600))
	takenBody := filepath.Join(bundle, "bodies", strconv.FormatInt(firstLeaf.Leaf.EventID, 10))
	body, err := os.ReadFile(takenBody)
	require.NoError(t, err)
	require.NoError(t, os.Remove(takenBody))
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "changed after the export")
	sig := filepath.Join(bundle, "manifest.sig")
	origSig, err := os.ReadFile(sig)
	require.NoError(t, err)
	require.NoError(t, os.Remove(sig))
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "FAILED: manifest.json is not signed")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, "--allow-unsigned-manifest", bundle}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 4 events")
	require.Contains(t, out.String(), "manifest.json is not signed")
	require.NotContains(t, out.String(), "complete:")
	require.NoError(t, os.Rename(manifest, manifest+".away"))
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "FAILED: the bundle has no manifest.json")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, "--allow-unsigned-manifest", bundle}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "no manifest.json")
	require.NoError(t, os.Rename(manifest+".away", manifest))
	require.NoError(t, os.WriteFile(sig, origSig, 0o600))
	require.NoError(t, os.WriteFile(events, orig, 0o600))
	require.NoError(t, os.WriteFile(takenBody, body, 0o600))
	require.NoError(t, os.Remove(manifest))
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "manifest.json is missing")
	require.NoError(t, os.WriteFile(manifest, origManifest, 0o600))
	otherSig, err := ledger.LoadKeys("", t.TempDir(), "casetrail.local/log")
	require.NoError(t, err)
	forged, err := note.Sign(&note.Note{Text: "casetrail bundle manifest\n"}, otherSig.Signer)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(sig, forged, 0o600))
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "manifest.sig")
	require.NoError(t, os.WriteFile(sig, origSig, 0o600))
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, bundle}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "complete:")

	// An empty selection is a bundle too: it shows that nothing matched.
	for _, sel := range [][]string{{"--case", "no-such-case"}, {"--from", "2001-01-01T00:00:00Z", "--to", "2001-01-02T00:00:00Z"}} {
		empty := filepath.Join(t.TempDir(), "empty")
		out.Reset()
		require.NoError(t, run(context.Background(), append([]string{"export", "--config", cfg, "--out", empty}, sel...), getenv, &out, io.Discard))
		require.Contains(t, out.String(), "exported 0 events")
		out.Reset()
		require.NoError(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, empty}, getenv, &out, io.Discard), out.String())
		require.Contains(t, out.String(), "OK: 0 events")
		require.Contains(t, out.String(), "complete:")
	}

	// An event no signed checkpoint covers yet (no server runs to sequence
	// it) is not left out silently: the export says the bundle is partial.
	st, err := store.Open(context.Background(), d.URL, store.Options{})
	require.NoError(t, err)
	late := []byte(`{"agentID":"late","targetPhoneNumber":"+14155550100"}`)
	_, err = st.Ingest(context.Background(), []store.NewEvent{{ReceivedAt: time.Now().UTC(), OccurredAt: time.Now().UTC(),
		Source: "hooks", Kind: "service-hooks", Type: "outbound-call", Credential: "test", IdempotencyKey: "late-1",
		ExplicitKey: true, Body: late, BodySHA256: sha256.Sum256(late)}})
	require.NoError(t, err)
	st.Close()
	partial := filepath.Join(t.TempDir(), "partial")
	out.Reset()
	err = run(context.Background(), []string{"export", "--config", cfg, "--from", from, "--to", to, "--out", partial, "--wait", "0s"}, getenv, &out, io.Discard)
	require.ErrorContains(t, err, "partial")
	require.Contains(t, out.String(), "exported 5 events")
	out.Reset()
	require.Error(t, run(context.Background(), []string{"verify-bundle", "--key", vkey, partial}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "OK: 5 events")
	require.Contains(t, out.String(), "PARTIAL: 1 more")

	// A checkpoint saved as a tool writes it (jq -r adds a newline) still
	// opens, and verify says the log has grown past it: the late event is
	// sequenced once a server runs again.
	var oldNote string
	read, err := pgx.Connect(context.Background(), d.URL)
	require.NoError(t, err)
	require.NoError(t, read.QueryRow(context.Background(), "SELECT note FROM log_checkpoints ORDER BY size DESC, id DESC LIMIT 1").Scan(&oldNote))
	read.Close(context.Background())
	saved := writeFile(t, oldNote+"\n")
	r = start(t, env, "serve", "--config", cfg)
	r.stop(t)
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"verify", "--config", cfg, "--checkpoint", saved}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 6 leaves recomputed from the stored rows; the first 5 match the checkpoint signed for \"casetrail.local/log\" at size 5, and the log extends it")

	// Change one stored event behind the store's back.
	conn, err := pgx.Connect(context.Background(), d.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), "SET session_replication_role = replica")
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), "UPDATE events SET type = 'workitem-closed' WHERE id = $1::bigint", ids[3])
	require.NoError(t, err)

	out.Reset()
	err = run(context.Background(), []string{"verify", "--config", cfg, "--key", strings.TrimSpace(keyOut.String())}, getenv, &out, io.Discard)
	require.Error(t, err)
	require.Contains(t, out.String(), "event "+ids[3]+" (log index 3) was altered")
}

// TestSlowClientsDoNotStopOthers holds 300 connections that send half a
// request header and stall, as a slow-loris attack does; a normal sender is
// still served.
func TestSlowClientsDoNotStopOthers(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	r := start(t, env, "serve", "--config", writeFile(t, testConfig))
	var slow []net.Conn
	defer func() {
		for _, c := range slow {
			c.Close()
		}
	}()
	for range 300 {
		c, err := net.Dial("tcp", r.addr)
		require.NoError(t, err)
		_, err = c.Write([]byte("POST /v1/ingest/hooks/outbound-call HTTP/1.1\r\nHost: casetrail\r\nx-api-key: hook-"))
		require.NoError(t, err)
		slow = append(slow, c)
	}
	postCall(t, r.addr, "a1")
	require.Equal(t, 200, httpStatus(t, "http://"+r.addr+"/readyz"))
}

// TestSecondServerNeedsTheLogsKey: a second server on the same database
// with a signing key of its own (generated into its own data_dir) still
// takes events, but signs no checkpoint and says so in /readyz; given the
// first server's key, it signs.
func TestSecondServerNeedsTheLogsKey(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	conn := d.Connect(t)
	checkpoints := func() int {
		var n int
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM log_checkpoints").Scan(&n))
		return n
	}
	readyz := func(addr string) string { return strings.Join(readyWarnings(t, "http://"+addr), "\n") }
	first := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	r := start(t, first, "serve", "--config", writeFile(t, testConfig))
	postCall(t, r.addr, "a1")
	r.stop(t) // signs a checkpoint of the grown log on the way out
	signed := checkpoints()
	require.Positive(t, signed)

	second := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	r2 := start(t, second, "serve", "--config", writeFile(t, testConfig))
	require.Contains(t, readyz(r2.addr), "signs no checkpoints")
	postCall(t, r2.addr, "a2")
	r2.stop(t)
	require.Equal(t, signed, checkpoints(), "the server with another key signed nothing, not even on the way out")

	key, err := os.ReadFile(filepath.Join(first["CASETRAIL_DATA_DIR"], "log-signing.key"))
	require.NoError(t, err)
	second["LOG_KEY"] = strings.TrimSpace(string(key))
	r3 := start(t, second, "serve", "--config", writeFile(t, testConfig+"log_signing_key: \"${LOG_KEY}\"\n"))
	require.NotContains(t, readyz(r3.addr), "signs no checkpoints")
	r3.stop(t)
	require.Equal(t, signed+1, checkpoints(), "with the log's key, it signs the event the other server took")
}

// postCall delivers an outbound call by agent to the "hooks" source of
// testConfig and requires a 200.
func postCall(t *testing.T, addr, agent string) {
	t.Helper()
	postHook(t, addr, "hooks", "hook-key", []byte(`{"agentID":"`+agent+`","targetPhoneNumber":"+14155550100","Timestamp":"2024-01-01T00:00:00Z"}`))
}

// TestFlagsAfterPositionalWords: every subcommand takes its flags before or
// after its positional words, as the usage shows (`migrate status --config
// FILE`).
func TestFlagsAfterPositionalWords(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	// The configuration is only reachable through --config: without it the
	// command would start a local PostgreSQL in the working directory.
	cfg := writeFile(t, "database_url: \""+d.URL+"\"\ndata_dir: \""+t.TempDir()+"\"\n")
	noEnv := func(string) string { return "" }
	for _, args := range [][]string{
		{"migrate", "status", "--config", cfg},
		{"migrate", "--config", cfg, "status"},
		{"migrate", "--config=" + cfg, "status"},
	} {
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), args, noEnv, &out, io.Discard), "%q", args)
		require.Contains(t, out.String(), "00001_events.sql", "%q", args)
		require.Contains(t, out.String(), "applied", "%q", args)
	}
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"migrate", "up", "--config", cfg}, noEnv, &out, io.Discard))

	// verify-bundle reads --key wherever it stands: a key that is not one is
	// refused before the directory is read.
	for _, args := range [][]string{
		{"verify-bundle", "--key", "not-a-key", t.TempDir()},
		{"verify-bundle", t.TempDir(), "--key", "not-a-key"},
	} {
		err := run(context.Background(), args, noEnv, io.Discard, io.Discard)
		require.ErrorContains(t, err, "verifier key", "%q", args)
	}
	// "--" ends the flags: what follows is a positional word.
	err := run(context.Background(), []string{"verify-bundle", "--key", "not-a-key", "--", "--dir"}, noEnv, io.Discard, io.Discard)
	require.ErrorContains(t, err, "verifier key")

	// Words a command does not take are refused, not ignored (before, a
	// word before --config made the command skip the file).
	for _, args := range [][]string{
		{"migrate", "status", "extra", "--config", cfg},
		{"keys", "extra", "--config", cfg},
		{"verify", "extra", "--config", cfg},
		{"export", "extra", "--case", "c-1", "--out", t.TempDir(), "--config", cfg},
		{"serve", "extra", "--config", cfg},
		{"verify-bundle", "--key", "not-a-key", t.TempDir(), "extra"},
	} {
		err := run(context.Background(), args, noEnv, io.Discard, io.Discard)
		require.ErrorContains(t, err, "usage", "%q", args)
	}
}

// TestServeWarnsOfAConfigurationThatDoesNothing: a file with no sources and
// no read keys starts, and says so in its log and in /readyz.
func TestServeWarnsOfAConfigurationThatDoesNothing(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	r := start(t, env, "serve", "--config", writeFile(t, "listen: \"127.0.0.1:0\"\n"))
	const want = "no sources and no read_keys"
	require.Contains(t, r.logged(), want)
	require.Contains(t, strings.Join(readyWarnings(t, "http://"+r.addr), "\n"), want)
	r.stop(t)

	r = start(t, env, "serve", "--config", writeFile(t, testConfig))
	require.NotContains(t, r.logged(), want)
	require.Empty(t, readyWarnings(t, "http://"+r.addr))
	r.stop(t)
}

// Hooks a server spooled, and so acknowledged, while it was configured to
// spool are stored after a restart with the default (fail) too.
func TestServeStoresASpoolLeftByAnEarlierConfiguration(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	dataDir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dataDir, "spool"))
	require.NoError(t, err)
	body := []byte(`{"case":{"id":"c-1"},"useCustomerContactInfo":true}`)
	require.NoError(t, sp.Append(store.NewEvent{ReceivedAt: time.Now().UTC(), OccurredAt: time.Now().UTC(),
		Source: "actions", Kind: "service-actions", Type: "before-resolve", Credential: "test",
		IdempotencyKey: "spooled-1", ExplicitKey: true, Body: body, BodySHA256: sha256.Sum256(body),
		Reply: []byte(`{"cancelled":false}`)}))
	require.NoError(t, sp.Close())

	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": dataDir, "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	r := start(t, env, "serve", "--config", writeFile(t, testConfig))
	require.Contains(t, r.logged(), "the spool holds hooks acknowledged while it was spool")
	r.stop(t) // a clean stop drains the spool, if the loop has not yet

	require.False(t, spool.Holds(filepath.Join(dataDir, "spool")), "the spool is empty")
	conn, err := pgx.Connect(context.Background(), d.URL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE idempotency_key = 'spooled-1'").Scan(&n))
	require.Equal(t, 1, n)
}

// postOutboundCalls posts n distinct outbound-call hooks (testConfig's
// hooks source) and returns their event ids.
func postOutboundCalls(t *testing.T, addr string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		body := []byte(fmt.Sprintf(`{"agentID":"a%d","targetPhoneNumber":"+14155550100","Timestamp":"2024-01-01T00:00:0%dZ"}`, i, i))
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/ingest/hooks/outbound-call", bytes.NewReader(body))
		req.Header.Set("x-api-key", "hook-key")
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var out ingested
		require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
		res.Body.Close()
		ids = append(ids, out.ID)
	}
	return ids
}

// casetrail expunge erases events' content as the database's owner; the
// store still verifies, and a bundle says which events were expunged.
func TestExpungeCommand(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	getenv := func(k string) string { return env[k] }
	cfg := writeFile(t, testConfig)
	r := start(t, env, "serve", "--config", cfg)
	ids := postOutboundCalls(t, r.addr, 3)
	r.stop(t)
	ctx := context.Background()
	var out bytes.Buffer
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--event", ids[0]}, "usage: casetrail expunge"},                   // no reason
		{[]string{"--event", ids[0], "--reason", "  "}, "usage: casetrail expunge"}, // a blank one
		{[]string{"--reason", "erasure request"}, "usage: casetrail expunge"},       // no event
		{[]string{"--event", "x1", "--reason", "test"}, `"x1" is not an event id`},  // not an id
	} {
		err := run(ctx, append([]string{"expunge", "--config", cfg}, tc.args...), getenv, &out, io.Discard)
		require.ErrorContains(t, err, tc.want, tc.args)
	}
	require.Empty(t, out.String())

	require.NoError(t, run(ctx, []string{"expunge", "--config", cfg, "--event", ids[0] + "," + ids[2], "--reason", "erasure request 12"}, getenv, &out, io.Discard))
	require.Equal(t, 2, strings.Count(out.String(), "expunged event"), out.String())
	require.Contains(t, out.String(), "expunged event "+ids[2])
	out.Reset()
	require.NoError(t, run(ctx, []string{"expunge", "--config", cfg, "--event", ids[0], "--reason", "again"}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "expunged already")

	require.NoError(t, run(ctx, []string{"verify", "--config", cfg}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 3 leaves")
	bundle := filepath.Join(t.TempDir(), "bundle")
	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	require.NoError(t, run(ctx, []string{"export", "--config", cfg, "--from", from, "--to", to, "--out", bundle}, getenv, &out, io.Discard))
	var key bytes.Buffer
	require.NoError(t, run(ctx, []string{"keys", "--config", cfg}, getenv, &key, io.Discard))
	out.Reset()
	require.NoError(t, run(ctx, []string{"verify-bundle", "--key", strings.TrimSpace(key.String()), bundle}, getenv, &out, io.Discard), out.String())
	require.Contains(t, out.String(), "OK: 3 events are in the signed log; 1 matches its body, and 2 were expunged")
	// The bundle carries each expunge's reason, as given.
	lines, err := os.ReadFile(filepath.Join(bundle, "events.ndjson"))
	require.NoError(t, err)
	require.Equal(t, 2, strings.Count(string(lines), `"reason":"erasure request 12"`))
	// An expunged event's line carries no salt, with which a guess of the
	// erased body could be tested against the hash its leaf commits to.
	require.Equal(t, 1, strings.Count(string(lines), `"salt":`), string(lines))
}

// A second SIGTERM while the server drains ends it at once: a drain that
// hangs (here a shutdown_delay of ten minutes) can be cut short.
func TestSecondSignalEndsTheDrain(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	cmd := exec.Command(os.Args[0], "serve", "--config", writeFile(t, testConfig+"shutdown_delay: 10m\n"))
	cmd.Env = append(os.Environ(), "CASETRAIL_TEST_RUN_MAIN=1", "DATABASE_URL="+d.URL,
		"CASETRAIL_DATA_DIR="+t.TempDir(), "HOOK_KEY=hook-key", "CV_SECRET=cv-secret")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = testWriter{t}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck
		<-exited
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
		exited <- cmd.Wait()
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-exited:
		t.Fatalf("casetrail exited before listening: %v", err)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	for httpStatus(t, base+"/readyz") != http.StatusServiceUnavailable {
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err = <-exited:
		exited <- err // for the cleanup
	case <-time.After(time.Minute): // against a hang, far short of the ten minutes
		t.Fatal("the second signal did not end the drain")
	}
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	status, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	require.True(t, status.Signaled(), "ended by the second signal: %v", err)
	require.Equal(t, syscall.SIGTERM, status.Signal())
}

// casetrail expunge --rejected erases the bodies of kept rejected requests.
func TestExpungeRejectedCommand(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": d.URL, "CASETRAIL_DATA_DIR": t.TempDir(), "HOOK_KEY": "hook-key", "CV_SECRET": "cv-secret"}
	getenv := func(k string) string { return env[k] }
	cfg := writeFile(t, testConfig)
	start(t, env, "serve", "--config", cfg).stop(t)
	ctx := context.Background()
	st, err := store.Open(ctx, d.URL, store.Options{})
	require.NoError(t, err)
	defer st.Close()
	id, err := st.Reject(ctx, store.Rejected{ReceivedAt: time.Now(), Source: "hooks", Status: 400, Cause: "invalid_json",
		Credential: "api-key:00", Body: []byte(`{"patient":"Ann Smith"`), BodySize: 22})
	require.NoError(t, err)

	var out bytes.Buffer
	err = run(ctx, []string{"expunge", "--config", cfg, "--rejected", "r1", "--reason", "x"}, getenv, &out, io.Discard)
	require.ErrorContains(t, err, `"r1" is not a rejected request id`)
	rid := strconv.FormatInt(id, 10)
	require.NoError(t, run(ctx, []string{"expunge", "--config", cfg, "--rejected", rid, "--reason", "erasure request 9"}, getenv, &out, io.Discard))
	require.Contains(t, out.String(), "expunged rejected request "+rid)
	r, err := st.Rejection(ctx, id)
	require.NoError(t, err)
	require.Empty(t, r.Body)
	require.NotNil(t, r.Expunged)
}
