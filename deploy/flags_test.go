package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// root is the module's root (tests run in deploy/).
const root = ".."

// ours are the binaries the deployment files run, with the prefix of their environment variables.
var ours = map[string]string{"feed": "TICKWIRE_FEED", "ingest": "TICKWIRE", "tickctl": "TICKWIRE"}

var built struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binaries builds feed, ingest and tickctl once for the package's tests and returns their directory.
func binaries(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "tickwire-deploy-"); built.err != nil {
			return
		}
		cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", built.dir+string(filepath.Separator),
			"./cmd/feed", "./cmd/ingest", "./cmd/tickctl")
		cmd.Dir = root
		built.out, built.err = cmd.CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.dir
}

// cli is what a binary (or a tickctl command) accepts, as its --help says.
type cli struct {
	flags map[string]bool
	envs  map[string]bool
}

var (
	// kong's help: a flag line starts with "  --name", "  -h, --name" or "  --[no-]name".
	helpFlag = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--(?:\[no-\])?([a-z0-9][a-z0-9-]*)`)
	// kong's help names each flag's variable as ($TICKWIRE_...).
	helpEnv = regexp.MustCompile(`\(\$(TICKWIRE_[A-Z0-9_]+)\)`)
)

// parseHelp reads the flags and environment variables out of a kong --help text. prefix is the
// binary's environment prefix: its NATS password variable is read directly, never a flag.
func parseHelp(help, prefix string) cli {
	c := cli{flags: map[string]bool{}, envs: map[string]bool{prefix + "_NATS_PASSWORD": true}}
	for _, m := range helpFlag.FindAllStringSubmatch(help, -1) {
		c.flags[m[1]] = true
	}
	for _, m := range helpEnv.FindAllStringSubmatch(help, -1) {
		c.envs[m[1]] = true
	}
	return c
}

// clis runs the binaries' --help (tickctl's per command) as needed, once each.
type clis struct {
	dir string
	got map[string]cli
}

func (c *clis) of(t *testing.T, bin string, command string) (cli, error) {
	t.Helper()
	key := strings.TrimSpace(bin + " " + command)
	if h, ok := c.got[key]; ok {
		return h, nil
	}
	args := []string{"--help"}
	if command != "" {
		args = []string{command, "--help"}
	}
	out, err := exec.Command(filepath.Join(c.dir, bin), args...).CombinedOutput()
	if err != nil {
		return cli{}, fmt.Errorf("%s --help: %v\n%s", key, err, out)
	}
	h := parseHelp(string(out), ours[bin])
	if len(h.flags) < 5 {
		return cli{}, fmt.Errorf("%s --help: found only %d flags in\n%s", key, len(h.flags), out)
	}
	c.got[key] = h
	return h, nil
}

// invocation is one of our binaries as a deployment file runs it.
type invocation struct {
	where string   // file, object
	bin   string   // feed, ingest or tickctl
	args  []string // after the binary
	env   []string // variable names given to it
}

// problems lists what inv passes that the binary does not take.
func (inv invocation) problems(t *testing.T, c *clis) []string {
	t.Helper()
	command := ""
	if inv.bin == "tickctl" {
		if len(inv.args) == 0 || strings.HasPrefix(inv.args[0], "-") {
			return []string{"tickctl without a command"}
		}
		command = inv.args[0]
	}
	h, err := c.of(t, inv.bin, command)
	if err != nil {
		return []string{err.Error()}
	}
	var bad []string
	for _, a := range inv.args {
		if !strings.HasPrefix(a, "--") {
			continue // a value, or a command
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !h.flags[name] {
			bad = append(bad, fmt.Sprintf("flag --%s: %s %s has no such flag", name, inv.bin, command))
		}
	}
	for _, e := range inv.env {
		if strings.HasPrefix(e, "TICKWIRE_") && !h.envs[e] {
			bad = append(bad, fmt.Sprintf("environment %s: %s %s reads no such variable", e, inv.bin, command))
		}
	}
	return bad
}

// helm runs the helm of tools/go.mod (built once into Go's build cache) from the module's root.
func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"tool", "-modfile=tools/go.mod", "helm"}, args...)...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// chartVariants are the value sets rendered: the defaults, and every optional part on.
var chartVariants = [][]string{
	nil,
	{"--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
		"--set", "consolidated.enabled=true", "--set", "consolidated.consolidate={consolidated:ACME=synthetic:ACME,synthetic-b:ACME}",
		"--set", "feed.publicUrl=https://md.example.com", "--set", "feed.allowedOrigins={https://app.example.com}",
		// What values.yaml and docs/OPERATIONS.md advise behind an Ingress.
		"--set", "feed.extraArgs={--max-conns-per-ip=-1,--candles-rate=-1}"},
}

// rendered is the chart's manifests, one map per YAML document, for every variant.
func rendered(t *testing.T) []map[string]any {
	t.Helper()
	var docs []map[string]any
	for _, v := range chartVariants {
		out := helm(t, append([]string{"template", "tw", "deploy/helm/tickwire"}, v...)...)
		docs = append(docs, decodeAll(t, "helm template "+strings.Join(v, " "), out)...)
	}
	return docs
}

func decodeAll(t *testing.T, what string, b []byte) []map[string]any {
	t.Helper()
	var docs []map[string]any
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var d map[string]any
		if err := dec.Decode(&d); err != nil {
			if err.Error() == "EOF" {
				return docs
			}
			t.Fatalf("%s: %v", what, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// containers finds every container spec in doc, wherever the kind keeps them.
func containers(doc any) []map[string]any {
	var out []map[string]any
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			if l, ok := v.([]any); ok && (k == "containers" || k == "initContainers") {
				for _, c := range l {
					if m, ok := c.(map[string]any); ok {
						out = append(out, m)
					}
				}
				continue
			}
			out = append(out, containers(v)...)
		}
	case []any:
		for _, v := range d {
			out = append(out, containers(v)...)
		}
	}
	return out
}

func strs(v any) []string {
	switch x := v.(type) {
	case []any:
		var s []string
		for _, e := range x {
			s = append(s, fmt.Sprint(e))
		}
		return s
	case string:
		return strings.Fields(x)
	}
	return nil
}

func helmInvocations(t *testing.T) []invocation {
	t.Helper()
	var invs []invocation
	for _, doc := range rendered(t) {
		meta, _ := doc["metadata"].(map[string]any)
		where := fmt.Sprintf("helm %v/%v", doc["kind"], meta["name"])
		for _, c := range containers(doc) {
			cmd := append(strs(c["command"]), strs(c["args"])...)
			if len(cmd) == 0 {
				t.Errorf("%s: container %v has no command (the image's default is not checked)", where, c["name"])
				continue
			}
			inv := invocation{where: where, bin: path.Base(cmd[0]), args: cmd[1:]}
			if _, ok := ours[inv.bin]; !ok {
				continue
			}
			if env, ok := c["env"].([]any); ok {
				for _, e := range env {
					if m, ok := e.(map[string]any); ok {
						inv.env = append(inv.env, fmt.Sprint(m["name"]))
					}
				}
			}
			invs = append(invs, inv)
		}
	}
	return invs
}

func composeInvocations(t *testing.T) []invocation {
	t.Helper()
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]struct {
			Entrypoint  any `yaml:"entrypoint"`
			Command     any `yaml:"command"`
			Environment any `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	var invs []invocation
	for name, s := range f.Services {
		cmd := append(strs(s.Entrypoint), strs(s.Command)...)
		if len(cmd) == 0 {
			continue
		}
		inv := invocation{where: "compose " + name, bin: path.Base(cmd[0]), args: cmd[1:]}
		if _, ok := ours[inv.bin]; !ok {
			continue
		}
		switch env := s.Environment.(type) {
		case map[string]any:
			for k := range env {
				inv.env = append(inv.env, k)
			}
		case []any:
			for _, e := range env {
				k, _, _ := strings.Cut(fmt.Sprint(e), "=")
				inv.env = append(inv.env, k)
			}
		}
		invs = append(invs, inv)
	}
	return invs
}

// systemdInvocations reads the units' ExecStart and Environment lines and the example
// environment files (feed.env.example for feed, ingest.env.example for ingest).
func systemdInvocations(t *testing.T) []invocation {
	t.Helper()
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) == 0 {
		t.Fatal("no systemd/*.service")
	}
	var invs []invocation
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		// Continuation lines joined, comments dropped.
		var lines []string
		cur := ""
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if cur == "" && (strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";")) {
				continue
			}
			if rest, ok := strings.CutSuffix(l, `\`); ok {
				cur += rest + " "
				continue
			}
			lines = append(lines, cur+l)
			cur = ""
		}
		var env []string
		var execs [][]string
		for _, l := range lines {
			if v, ok := strings.CutPrefix(l, "Environment="); ok {
				for _, kv := range strings.Fields(v) {
					k, _, _ := strings.Cut(strings.Trim(kv, `"`), "=")
					env = append(env, k)
				}
			}
			if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
				execs = append(execs, strings.Fields(strings.TrimLeft(v, "-@:+!")))
			}
		}
		for _, cmd := range execs {
			inv := invocation{where: "systemd " + filepath.Base(u), bin: path.Base(cmd[0]), args: cmd[1:], env: env}
			if _, ok := ours[inv.bin]; ok {
				invs = append(invs, inv)
			}
		}
	}
	for bin := range ours {
		f := "systemd/" + bin + ".env.example"
		b, err := os.ReadFile(f)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		inv := invocation{where: "systemd " + filepath.Base(f), bin: bin}
		for _, l := range strings.Split(string(b), "\n") {
			l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
			if k, _, ok := strings.Cut(l, "="); ok && regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`).MatchString(k) {
				inv.env = append(inv.env, k) // commented-out examples too: they must work when enabled
			}
		}
		invs = append(invs, inv)
	}
	return invs
}

// TestManifestFlagsExist: every flag and TICKWIRE_ variable the Helm chart, the compose file and
// the systemd units give feed, ingest and tickctl is one the built binary takes.
func TestManifestFlagsExist(t *testing.T) {
	c := &clis{dir: binaries(t), got: map[string]cli{}}
	sources := []struct {
		name  string
		invs  func(*testing.T) []invocation
		wants []string // binaries this source must run: a parser that found nothing would pass all
	}{
		{"helm", helmInvocations, []string{"feed", "ingest"}},
		{"compose", composeInvocations, []string{"feed", "ingest", "tickctl"}},
		{"systemd", systemdInvocations, []string{"feed", "ingest"}},
	}
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			invs := src.invs(t)
			seen := map[string]int{}
			for _, inv := range invs {
				seen[inv.bin]++
				for _, p := range inv.problems(t, c) {
					t.Errorf("%s: %s", inv.where, p)
				}
			}
			for _, b := range src.wants {
				if seen[b] == 0 {
					t.Errorf("no %s found in the %s files", b, src.name)
				}
			}
			t.Logf("%d invocations checked: %v", len(invs), seen)
		})
	}
}

// TestFlagCheckCatches: the check above fails on a flag, a variable or a command that the
// binaries do not have (a renamed one).
func TestFlagCheckCatches(t *testing.T) {
	c := &clis{dir: binaries(t), got: map[string]cli{}}
	tests := []struct {
		name string
		inv  invocation
		want int
	}{
		{"known flags and variables", invocation{bin: "feed", args: []string{"--listen=:8080", "--stream-replicas", "3"},
			env: []string{"TICKWIRE_FEED_NATS_PASSWORD", "TICKWIRE_FEED_LISTEN", "GOMEMLIMIT"}}, 0},
		{"renamed flag", invocation{bin: "feed", args: []string{"--listen-address=:8080"}}, 1},
		{"another binary's variable", invocation{bin: "ingest", env: []string{"TICKWIRE_FEED_LISTEN"}}, 1},
		{"ingest's lease", invocation{bin: "ingest", args: []string{"--lease=synthetic", "--lease-ttl=6s"}}, 0},
		{"tickctl command flag", invocation{bin: "tickctl", args: []string{"token", "--key-file", "k", "--sub", "x"}}, 0},
		{"tickctl flag of another command", invocation{bin: "tickctl", args: []string{"token", "--session", "x"}}, 1},
		{"tickctl without a command", invocation{bin: "tickctl", args: []string{"--help"}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.inv.problems(t, c); len(got) != tt.want {
				t.Fatalf("problems %q, want %d", got, tt.want)
			}
		})
	}
}

// sortedKeys is for stable messages.
func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
