// Package config loads casetrail's configuration: one optional YAML file,
// single settings overridden by environment variables, and `${NAME}` values
// read from the environment. It is validated once, at start-up, with
// messages that name the offending setting.
package config

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/net/http/httpguts"
	"gopkg.in/yaml.v3"

	"github.com/casetrail/casetrail/internal/normalize"
)

// Source kinds.
const (
	KindCaseUpdates    = "case-updates"
	KindServiceActions = "service-actions"
	KindServiceHooks   = "service-hooks"
)

// Kinds lists every source kind.
var Kinds = []string{KindCaseUpdates, KindServiceActions, KindServiceHooks}

// Read roles.
const (
	RoleAnalyst = "analyst"
	RoleAuditor = "auditor"
	RoleAdmin   = "admin"
)

// Roles lists every read role.
var Roles = []string{RoleAnalyst, RoleAuditor, RoleAdmin}

// DefaultMaxBodyBytes is 32 MiB.
const DefaultMaxBodyBytes = 32 << 20

// Config is the whole configuration.
type Config struct {
	Listen      string `yaml:"listen"`
	DatabaseURL string `yaml:"database_url"`
	// ReportDatabaseURL, when set, is where the abandonment reports and
	// their drill-down read from: a streaming replica of the database, so
	// that long reports do not share its cores and buffers with ingest.
	// Everything else, the auditors' access log included, stays on
	// DatabaseURL.
	ReportDatabaseURL string `yaml:"report_database_url"`
	// DataDir holds the local PostgreSQL of `make run` and generated keys.
	DataDir      string `yaml:"data_dir"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
	// PhoneDefaultCountryCode (e.g. "44") is applied to phone numbers written
	// without an international prefix.
	PhoneDefaultCountryCode string `yaml:"phone_default_country_code"`
	// GroupCommit lets concurrent requests share commits (default on):
	// CommitWorkers committers gather requests into transactions of at most
	// CommitMaxBatch events; one runs at a time, unless the next holds
	// CommitParallelBatch events or more. With CommitPipeline (default on),
	// the batches that run one at a time share one connection, the next
	// written behind the one running.
	GroupCommit         *bool `yaml:"group_commit"`
	CommitWorkers       int   `yaml:"commit_workers"`
	CommitParallelBatch int   `yaml:"commit_parallel_batch"`
	CommitMaxBatch      int   `yaml:"commit_max_batch"`
	CommitPipeline      *bool `yaml:"commit_pipeline"`
	// LogOrigin names this log in its checkpoints (and the signing key).
	LogOrigin string `yaml:"log_origin"`
	// LogSigningKey is the checkpoint signer key in the note form
	// PRIVATE+KEY+name+hash+base64; empty: generated into data_dir on first
	// start. Servers sharing a database must share it.
	LogSigningKey string `yaml:"log_signing_key"`
	// LogPreviousKeys are the verifier keys (name+hash+base64) of the
	// signing keys the log was rotated away from, oldest first: what they
	// signed still verifies, and the newest checkpoint one of them signed is
	// signed on with LogSigningKey.
	LogPreviousKeys []string `yaml:"log_previous_keys"`
	// SequenceInterval is how often committed events are added to the log;
	// CheckpointInterval how often a grown log is signed.
	SequenceInterval   Duration `yaml:"sequence_interval"`
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// BeforeHooksOnOutage: "fail" (default) answers before-* hooks like
	// every other event: 2xx only once committed, 503 while the database
	// cannot take them. "spool" answers them with the no-change reply when
	// the database cannot commit them within 150 ms, keeping them in a local
	// fsync'd spool until it can: the agent is not held up, but until the
	// spool drains the acknowledged event lives only on this server's disk.
	BeforeHooksOnOutage string `yaml:"before_hooks_on_outage"`
	// PprofListen, when set (e.g. "127.0.0.1:6060"), serves Go's profiler
	// there for diagnosing the server under load. Keep it on loopback.
	PprofListen string `yaml:"pprof_listen"`
	// ShutdownTimeout bounds the graceful drain on SIGTERM.
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// ShutdownDelay is how long, on SIGTERM, the server goes on serving
	// with /readyz answering 503 draining before it stops taking
	// connections, so that a load balancer probing /readyz takes it out
	// first (0: stop at once).
	ShutdownDelay Duration  `yaml:"shutdown_delay"`
	Sources       []Source  `yaml:"sources"`
	ReadKeys      []ReadKey `yaml:"read_keys"`

	// Dev is true when no file was given: the three default sources run with
	// generated development credentials (see DevCredentials).
	Dev bool `yaml:"-"`

	// fromEnv maps the path of each setting written with ${NAME} to those
	// references, which messages name instead of the value.
	fromEnv map[string]string
}

// Source is one configured sender.
type Source struct {
	Name string `yaml:"name"`
	Kind string `yaml:"kind"`
	// HMACSecret checks x-cv-signature (case-updates) or Authorization: HMAC
	// (service-actions).
	HMACSecret string `yaml:"hmac_secret"`
	// HMACSecrets are checked like HMACSecret, a signature made with any of
	// them accepted: the old and the new secret while one is rotated, since
	// the sender and casetrail cannot change theirs at the same instant.
	HMACSecrets []string `yaml:"hmac_secrets"`
	// AuthHeader + AuthSecret: a plain shared secret in a header of the
	// operator's choice, for case-updates senders that cannot sign.
	AuthHeader string `yaml:"auth_header"`
	AuthSecret string `yaml:"auth_secret"`
	// AuthSecrets are accepted in AuthHeader like AuthSecret: the old and
	// the new one while the secret is rotated.
	AuthSecrets []string `yaml:"auth_secrets"`
	// APIKeys are accepted in x-api-key (service-hooks); several at once for
	// rotation.
	APIKeys []string `yaml:"api_keys"`
	// Auth "none" accepts unauthenticated requests; it must be said
	// explicitly.
	Auth string `yaml:"auth"`
}

// ReadKey is a bearer key of the read API.
type ReadKey struct {
	Name string `yaml:"name"`
	Role string `yaml:"role"`
	Key  string `yaml:"key"`
}

// Duration reads "30s"-style durations.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (e.g. 30s)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Load reads the file at path (none when path is empty) and applies the
// environment: DATABASE_URL, CASETRAIL_REPORT_DATABASE_URL, CASETRAIL_LISTEN,
// CASETRAIL_DATA_DIR, CASETRAIL_MAX_BODY_BYTES override single settings.
func Load(path string, getenv func(string) string) (*Config, error) {
	cfg := &Config{}
	if path == "" {
		cfg.Dev = true
	} else {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		if err := parse(raw, getenv, cfg); err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if v := getenv("DATABASE_URL"); v != "" {
		cfg.DatabaseURL = v
	}
	if v := getenv("CASETRAIL_REPORT_DATABASE_URL"); v != "" {
		cfg.ReportDatabaseURL = v
	}
	if v := getenv("CASETRAIL_LISTEN"); v != "" {
		cfg.Listen = v
	}
	if v := getenv("CASETRAIL_DATA_DIR"); v != "" {
		cfg.DataDir = v
	}
	if v := getenv("CASETRAIL_PPROF_LISTEN"); v != "" {
		cfg.PprofListen = v
	}
	if v := getenv("CASETRAIL_GROUP_COMMIT"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, errors.New("CASETRAIL_GROUP_COMMIT is not true or false")
		}
		cfg.GroupCommit = &on
	}
	if v := getenv("CASETRAIL_MAX_BODY_BYTES"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errors.New("CASETRAIL_MAX_BODY_BYTES is not a number of bytes")
		}
		cfg.MaxBodyBytes = n
		if cfg.fromEnv == nil {
			cfg.fromEnv = map[string]string{}
		}
		cfg.fromEnv["max_body_bytes"] = "CASETRAIL_MAX_BODY_BYTES"
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		if path != "" {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// LoadLog reads only what names the server's log and its keys from the
// file at path: log_origin, log_signing_key, log_previous_keys and data_dir
// (where a generated key is kept), with CASETRAIL_DATA_DIR. It is for checking the log's
// signatures offline (verify-bundle), on a machine that holds the file but
// none of the ingest and read secrets it reads from the environment: those
// settings are left unset, and the rest is not checked.
func LoadLog(path string, getenv func(string) string) (*Config, error) {
	cfg := &Config{}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	d := &decoder{getenv: getenv, fromEnv: map[string]string{},
		only: map[string]bool{"log_origin": true, "log_signing_key": true, "log_previous_keys": true, "data_dir": true}}
	if err := parseWith(d, raw, cfg); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if v := getenv("CASETRAIL_DATA_DIR"); v != "" {
		cfg.DataDir = v
	}
	cfg.applyDefaults()
	return cfg, nil
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.DataDir == "" {
		c.DataDir = ".casetrail"
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.GroupCommit == nil {
		on := true
		c.GroupCommit = &on
	}
	if c.CommitPipeline == nil {
		on := true
		c.CommitPipeline = &on
	}
	if c.CommitWorkers == 0 {
		c.CommitWorkers = 2
	}
	if c.CommitParallelBatch == 0 {
		c.CommitParallelBatch = 64
	}
	if c.CommitMaxBatch == 0 {
		c.CommitMaxBatch = 256
	}
	if c.BeforeHooksOnOutage == "" {
		c.BeforeHooksOnOutage = "fail"
	}
	if c.LogOrigin == "" {
		c.LogOrigin = "casetrail.local/log"
	}
	if c.SequenceInterval == 0 {
		c.SequenceInterval = Duration(500 * time.Millisecond)
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = Duration(10 * time.Second)
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = Duration(30 * time.Second)
	}
}

// shown is the value v of the setting at path as a message may show it:
// quoted as written in the file, or, when it was read from the environment,
// only the ${NAME}s it was read from, since it may be a secret.
func (c *Config) shown(path string, v any) string {
	if refs, ok := c.fromEnv[path]; ok {
		return refs
	}
	if s, ok := v.(string); ok {
		return strconv.Quote(s)
	}
	return fmt.Sprint(v)
}

// nameShown is like shown, for a name that messages write unquoted.
func (c *Config) nameShown(path, name string) string {
	if refs, ok := c.fromEnv[path]; ok {
		return refs
	}
	return name
}

// Validate checks the configuration as a whole.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max_body_bytes: %s is too small (at least 1024)", c.shown("max_body_bytes", c.MaxBodyBytes)))
	}
	if c.CommitWorkers < 0 || c.CommitWorkers > 64 {
		errs = append(errs, fmt.Errorf("commit_workers: %s is out of range (1 to 64)", c.shown("commit_workers", c.CommitWorkers)))
	}
	if c.CommitParallelBatch < 0 {
		errs = append(errs, fmt.Errorf("commit_parallel_batch: %s is out of range (at least 1)", c.shown("commit_parallel_batch", c.CommitParallelBatch)))
	}
	if c.CommitMaxBatch < 0 || c.CommitMaxBatch > 10000 {
		errs = append(errs, fmt.Errorf("commit_max_batch: %s is out of range (1 to 10000)", c.shown("commit_max_batch", c.CommitMaxBatch)))
	}
	if c.BeforeHooksOnOutage != "" && c.BeforeHooksOnOutage != "spool" && c.BeforeHooksOnOutage != "fail" {
		errs = append(errs, fmt.Errorf("before_hooks_on_outage: %s must be spool or fail", c.shown("before_hooks_on_outage", c.BeforeHooksOnOutage)))
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"sequence_interval", c.SequenceInterval}, {"checkpoint_interval", c.CheckpointInterval}, {"shutdown_timeout", c.ShutdownTimeout}, {"shutdown_delay", c.ShutdownDelay}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s: %s is negative", d.name, time.Duration(d.v)))
		}
	}
	if strings.ContainsAny(c.LogOrigin, "+ \t\n") {
		errs = append(errs, fmt.Errorf("log_origin: %s may not contain '+' or spaces", c.shown("log_origin", c.LogOrigin)))
	}
	// A code the normaliser cannot use would leave every national number
	// without a phone, silently: refused here instead.
	if c.PhoneDefaultCountryCode != "" && (normalize.Options{DefaultCountryCode: c.PhoneDefaultCountryCode}).Validate() != nil {
		errs = append(errs, fmt.Errorf("phone_default_country_code: %s must be a calling code of 1 to 3 digits, not starting with 0, e.g. \"44\"", c.shown("phone_default_country_code", c.PhoneDefaultCountryCode)))
	}
	names := map[string]bool{}
	for i, s := range c.Sources {
		where := fmt.Sprintf("sources[%d] (%s)", i, c.nameShown(fmt.Sprintf("sources[%d].name", i), s.Name))
		switch {
		case s.Name == "":
			errs = append(errs, fmt.Errorf("sources[%d]: name is required", i))
		case !validName(s.Name):
			errs = append(errs, fmt.Errorf("%s: name may use only letters, digits, '-', '_' and '.'", where))
		case names[s.Name]:
			errs = append(errs, fmt.Errorf("%s: name is used twice", where))
		}
		names[s.Name] = true
		if !slices.Contains(Kinds, s.Kind) {
			errs = append(errs, fmt.Errorf("%s: unknown kind %s (want one of %s)", where, c.shown(fmt.Sprintf("sources[%d].kind", i), s.Kind), strings.Join(Kinds, ", ")))
			continue
		}
		if err := s.validateAuth(c.shown(fmt.Sprintf("sources[%d].auth", i), s.Auth)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
	}
	keyNames := map[string]bool{}
	keys := map[string]string{} // key -> where it is given, for messages
	for i, k := range c.ReadKeys {
		where := fmt.Sprintf("read_keys[%d] (%s)", i, c.nameShown(fmt.Sprintf("read_keys[%d].name", i), k.Name))
		if k.Name == "" {
			errs = append(errs, fmt.Errorf("read_keys[%d]: name is required", i))
		} else if keyNames[k.Name] {
			errs = append(errs, fmt.Errorf("%s: name is used twice", where))
		}
		keyNames[k.Name] = true
		if !slices.Contains(Roles, k.Role) {
			errs = append(errs, fmt.Errorf("%s: unknown role %s (want one of %s)", where, c.shown(fmt.Sprintf("read_keys[%d].role", i), k.Role), strings.Join(Roles, ", ")))
		}
		if len(k.Key) < 16 {
			errs = append(errs, fmt.Errorf("%s: key must be at least 16 characters", where))
		} else if !headerValue(k.Key) {
			errs = append(errs, fmt.Errorf("%s: key %s", where, notInHeader))
		} else if keys[k.Key] != "" {
			errs = append(errs, fmt.Errorf("%s: the same key is given to two names", where))
		}
		if keys[k.Key] == "" {
			keys[k.Key] = where
		}
	}
	// Ingest credentials cannot read: none may also be a read key. Nor may
	// two sources share one: a sender could then post as the other source.
	ingestCreds := map[string]string{}
	for i, s := range c.Sources {
		where := fmt.Sprintf("sources[%d] (%s)", i, c.nameShown(fmt.Sprintf("sources[%d].name", i), s.Name))
		mine := map[string]bool{}
		for _, cred := range s.secrets() {
			if cred.value == "" {
				continue
			}
			// A header secret "Bearer <key>" in Authorization is a read key
			// as the read API takes it.
			k := keys[cred.value]
			if v := cred.value; k == "" && len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
				k = keys[strings.TrimSpace(v[7:])]
			}
			if k != "" {
				errs = append(errs, fmt.Errorf("%s: %s is also the key of %s; ingest and read credentials must differ", where, cred.setting, k))
			}
			if other := ingestCreds[cred.value]; other != "" && !mine[cred.value] {
				errs = append(errs, fmt.Errorf("%s: %s is also a credential of %s; each source needs its own, or one source's sender could post as the other", where, cred.setting, other))
			}
			if !mine[cred.value] {
				mine[cred.value] = true
				if ingestCreds[cred.value] == "" {
					ingestCreds[cred.value] = where
				}
			}
		}
	}
	return errors.Join(errs...)
}

// Warnings name what is valid but probably not meant, for the server to say
// at start (in its log and /readyz).
func (c *Config) Warnings() []string {
	if len(c.Sources) == 0 && len(c.ReadKeys) == 0 {
		return []string{"the configuration has no sources and no read_keys: this server takes no events and answers no reads"}
	}
	return nil
}

// HMACKeys lists the secrets a body signature may be made with:
// hmac_secret, then each of hmac_secrets.
func (s Source) HMACKeys() []string {
	var keys []string
	if s.HMACSecret != "" {
		keys = append(keys, s.HMACSecret)
	}
	return append(keys, s.HMACSecrets...)
}

// HeaderKeys lists the secrets accepted in auth_header: auth_secret, then
// each of auth_secrets.
func (s Source) HeaderKeys() []string {
	var keys []string
	if s.AuthSecret != "" {
		keys = append(keys, s.AuthSecret)
	}
	return append(keys, s.AuthSecrets...)
}

type secret struct{ setting, value string }

// secrets lists the source's secrets with the settings that hold them.
func (s Source) secrets() []secret {
	out := []secret{{"hmac_secret", s.HMACSecret}, {"auth_secret", s.AuthSecret}}
	for i, k := range s.HMACSecrets {
		out = append(out, secret{fmt.Sprintf("hmac_secrets[%d]", i), k})
	}
	for i, k := range s.AuthSecrets {
		out = append(out, secret{fmt.Sprintf("auth_secrets[%d]", i), k})
	}
	for i, k := range s.APIKeys {
		out = append(out, secret{fmt.Sprintf("api_keys[%d]", i), k})
	}
	return out
}

// credentialSettings are the settings each kind authenticates with (see
// internal/ingest/auth.go), and how, for messages.
var credentialSettings = map[string]struct {
	settings []string
	checks   string
}{
	KindCaseUpdates:    {[]string{"hmac_secret", "hmac_secrets", "auth_header", "auth_secret", "auth_secrets"}, "hmac_secret or hmac_secrets (x-cv-signature) or auth_header + auth_secret or auth_secrets"},
	KindServiceActions: {[]string{"hmac_secret", "hmac_secrets"}, "hmac_secret or hmac_secrets (Authorization: HMAC)"},
	KindServiceHooks:   {[]string{"api_keys"}, "api_keys (x-api-key)"},
}

// validateAuth checks a source's credentials; auth is its auth setting as a
// message may show it.
func (s Source) validateAuth(auth string) error {
	if s.Auth != "" && s.Auth != "none" {
		return fmt.Errorf("auth: %s is not understood (only \"none\" may be written here)", auth)
	}
	// A setting the kind never checks would be accepted and ignored.
	set := []struct {
		name string
		set  bool
	}{{"hmac_secret", s.HMACSecret != ""}, {"hmac_secrets", len(s.HMACSecrets) > 0}, {"auth_header", s.AuthHeader != ""}, {"auth_secret", s.AuthSecret != ""}, {"auth_secrets", len(s.AuthSecrets) > 0}, {"api_keys", len(s.APIKeys) > 0}}
	used := credentialSettings[s.Kind]
	var unused []string
	has := false
	for _, c := range set {
		has = has || c.set
		if c.set && !slices.Contains(used.settings, c.name) {
			unused = append(unused, c.name)
		}
	}
	if len(unused) > 0 {
		return fmt.Errorf("%s: not used by a %s source, which checks only %s", strings.Join(unused, ", "), s.Kind, used.checks)
	}
	if s.Auth == "none" {
		if has {
			return errors.New(`auth: none, but credentials are configured too; remove one`)
		}
		return nil
	}
	noCredentials := errors.New("no credentials: set " + used.checks + ", or write auth: none")
	for i, k := range s.HMACSecrets {
		if k == "" {
			return fmt.Errorf("hmac_secrets[%d] is empty", i)
		}
	}
	hasHMAC := s.HMACSecret != "" || len(s.HMACSecrets) > 0
	switch s.Kind {
	case KindCaseUpdates:
		headerKeys := s.HeaderKeys()
		if !hasHMAC && len(headerKeys) == 0 {
			return noCredentials
		}
		if (s.AuthHeader == "") != (len(headerKeys) == 0) {
			return errors.New("auth_header and auth_secret (or auth_secrets) go together")
		}
		if s.AuthHeader != "" && !headerName(s.AuthHeader) {
			return fmt.Errorf("auth_header %q is not a header a request can carry its secret in", s.AuthHeader)
		}
		if s.AuthSecret != "" && !headerValue(s.AuthSecret) {
			return errors.New("auth_secret " + notInHeader)
		}
		for i, k := range s.AuthSecrets {
			if k == "" {
				return fmt.Errorf("auth_secrets[%d] is empty", i)
			}
			if !headerValue(k) {
				return fmt.Errorf("auth_secrets[%d] %s", i, notInHeader)
			}
		}
	case KindServiceActions:
		if !hasHMAC {
			return noCredentials
		}
	case KindServiceHooks:
		if len(s.APIKeys) == 0 {
			return noCredentials
		}
		for i, k := range s.APIKeys {
			if k == "" {
				return fmt.Errorf("api_keys[%d] is empty", i)
			}
			if !headerValue(k) {
				return fmt.Errorf("api_keys[%d] %s", i, notInHeader)
			}
		}
	}
	return nil
}

// notInHeader says why a key fails headerValue.
const notInHeader = "begins or ends with white space (a line break read with it?) or holds a control character: no request can carry it in a header"

// headerValue reports whether a key sent in a header can arrive as it is:
// HTTP drops the white space around a value and carries no control
// characters, so a key with either would fail every request.
func headerValue(v string) bool {
	return strings.TrimSpace(v) == v && !strings.ContainsFunc(v, unicode.IsControl)
}

// headerName: a header field name (an HTTP token) that reaches a handler
// among the request's headers; Go's server takes Host and
// Transfer-Encoding out of them.
func headerName(h string) bool {
	if !httpguts.ValidHeaderFieldName(h) {
		return false
	}
	switch http.CanonicalHeaderKey(h) {
	case "Host", "Transfer-Encoding":
		return false
	}
	return true
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Source returns the source called name.
func (c *Config) Source(name string) (Source, bool) {
	for _, s := range c.Sources {
		if s.Name == name {
			return s, true
		}
	}
	return Source{}, false
}

// DevCredentials are the generated credentials of a server running without
// a configuration file. They are random per data directory (kept in
// dev-credentials.json there), so that a development server reachable from a
// network is not open to anyone who read the README.
type DevCredentials struct {
	CaseUpdatesSecret    string `json:"case_updates_hmac_secret"`
	ServiceActionsSecret string `json:"service_actions_hmac_secret"`
	ServiceHooksKey      string `json:"service_hooks_api_key"`
	AnalystKey           string `json:"analyst_key"`
	AuditorKey           string `json:"auditor_key"`
	AdminKey             string `json:"admin_key"`
}

// UseDevCredentials loads (or creates) the development credentials in the
// data directory and configures the three default sources and one read key
// per role with them.
func (c *Config) UseDevCredentials() (*DevCredentials, error) {
	path := filepath.Join(c.DataDir, "dev-credentials.json")
	var dc DevCredentials
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &dc); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
		dc = DevCredentials{
			CaseUpdatesSecret:    "dev-cu-" + randomHex(16),
			ServiceActionsSecret: "dev-sa-" + randomHex(16),
			ServiceHooksKey:      "dev-sh-" + randomHex(16),
			AnalystKey:           "dev-analyst-" + randomHex(16),
			AuditorKey:           "dev-auditor-" + randomHex(16),
			AdminKey:             "dev-admin-" + randomHex(16),
		}
		raw, _ := json.MarshalIndent(dc, "", "  ")
		if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	c.Sources = []Source{
		{Name: KindCaseUpdates, Kind: KindCaseUpdates, HMACSecret: dc.CaseUpdatesSecret},
		{Name: KindServiceActions, Kind: KindServiceActions, HMACSecret: dc.ServiceActionsSecret},
		{Name: KindServiceHooks, Kind: KindServiceHooks, APIKeys: []string{dc.ServiceHooksKey}},
	}
	c.ReadKeys = []ReadKey{
		{Name: "dev-analyst", Role: RoleAnalyst, Key: dc.AnalystKey},
		{Name: "dev-auditor", Role: RoleAuditor, Key: dc.AuditorKey},
		{Name: "dev-admin", Role: RoleAdmin, Key: dc.AdminKey},
	}
	return &dc, c.Validate()
}

// Fingerprint identifies a secret in stored rows and logs without revealing
// it: the first 8 hex digits of its SHA-256.
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:4])
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
