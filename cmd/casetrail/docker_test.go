package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// No Docker engine runs here, so the image is checked as text: the data
// directory docker-compose.yml mounts a volume on must exist in the image,
// owned by the image's unprivileged user, or the server cannot write its
// signing key there and exits on first start.
func TestImageOwnsTheComposeDataDirectory(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
			Volumes     []string          `yaml:"volumes"`
		} `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	svc, ok := compose.Services["casetrail"]
	require.True(t, ok)
	dataDir := svc.Environment["CASETRAIL_DATA_DIR"]
	require.NotEmpty(t, dataDir)
	mounted := false
	for _, v := range svc.Volumes {
		mounted = mounted || strings.HasSuffix(v, ":"+dataDir)
	}
	require.True(t, mounted, "a volume keeps the data directory")

	dockerfile, err := os.ReadFile("Dockerfile")
	require.NoError(t, err)
	require.Contains(t, string(dockerfile), "distroless/static-debian12:nonroot")
	require.Regexp(t, regexp.MustCompile(`(?m)^COPY --from=build --chown=65532:65532 \S+ `+regexp.QuoteMeta(dataDir)+`$`), string(dockerfile))

	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	require.NoError(t, err)
	require.Contains(t, strings.Fields(string(ignore)), ".casetrail", "the local store and its keys stay out of the build")
}
