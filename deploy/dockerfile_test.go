package deploy_test

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one FROM and what follows it.
type stage struct {
	image, name string
	ins         []instruction
}

// parseDockerfile splits a Dockerfile into stages. It understands what
// ours use: comments, backslash continuations, FROM [--platform=..] IMAGE
// [AS NAME].
func parseDockerfile(t *testing.T, file string) []stage {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	sc := bufio.NewScanner(f)
	var cur strings.Builder
	start := 0
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasPrefix(line, "#") {
			continue // a comment inside a continuation
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("%s:%d: %s before FROM", file, start, in.cmd)
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur.Len() != 0 {
		t.Fatalf("%s: ends in a continuation", file)
	}
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// shellWords splits a shell command line into words, honouring single and
// double quotes (enough for our RUN lines).
func shellWords(s string) []string {
	var words []string
	var w strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			w.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				words = append(words, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, w.String())
	}
	return words
}

var varRE = regexp.MustCompile(`\$\{(\w+)(#[^}]*)?\}|\$(\w+)`)

// expand substitutes $VAR, ${VAR} and ${VAR#prefix} from vars ("" when
// unset).
func expand(s string, vars map[string]string) string {
	return varRE.ReplaceAllStringFunc(s, func(m string) string {
		sm := varRE.FindStringSubmatch(m)
		if sm[3] != "" {
			return vars[sm[3]]
		}
		return strings.TrimPrefix(vars[sm[1]], strings.TrimPrefix(sm[2], "#"))
	})
}

// goBuild is the go build command of a builder stage: its environment
// (the stage's ENV and the command's own assignments) and arguments.
type goBuild struct {
	env  map[string]string
	args []string // after "go build"
	out  string   // -o
	pkg  string   // the package built
}

func findGoBuild(t *testing.T, file string, st stage, vars map[string]string) goBuild {
	t.Helper()
	gb := goBuild{env: map[string]string{}}
	for _, in := range st.all("ENV") {
		for _, kv := range shellWords(in.args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				gb.env[k] = v
			}
		}
	}
	for _, in := range st.all("ARG") {
		for _, kv := range shellWords(in.args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				if _, set := vars[k]; !set {
					vars[k] = v
				}
			}
		}
	}
	var found []string
	for _, in := range st.all("RUN") {
		words := shellWords(in.args)
		i := slices.Index(words, "go")
		if i < 0 || i+1 >= len(words) || words[i+1] != "build" {
			continue
		}
		if found != nil {
			t.Fatalf("%s:%d: a second go build", file, in.line)
		}
		for _, w := range words[:i] {
			if strings.HasPrefix(w, "--") {
				continue // --mount=...
			}
			k, v, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("%s:%d: %q before go build is neither a RUN flag nor VAR=value", file, in.line, w)
			}
			gb.env[k] = expand(v, vars)
		}
		found = words[i+2:]
	}
	if found == nil {
		t.Fatalf("%s: no RUN ... go build in the build stage", file)
	}
	for i := 0; i < len(found); i++ {
		w := expand(found[i], vars)
		switch {
		case w == "-o" && i+1 < len(found):
			gb.out = found[i+1]
			i++
			continue
		case strings.HasPrefix(w, "./"):
			gb.pkg = w
		}
		gb.args = append(gb.args, w)
	}
	return gb
}

// build runs the go build command here, from the repository root, with
// its environment, writing the binary to out.
func (gb goBuild) build(t *testing.T, out string) {
	t.Helper()
	args := slices.Insert(append([]string{"build"}, gb.args...), 1, "-o", out)
	cmd := exec.Command(goBin(t), args...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	for k, v := range gb.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s (env %v): %v\n%s", strings.Join(args, " "), gb.env, err, b)
	}
}

// TestDockerfiles checks every container file: pinned base images (no
// latest), a static CGO_ENABLED=0 -trimpath build of a command that exists
// in the repository, a final distroless or scratch stage that runs as a
// non-root user with a volume, the code's default ports exposed, a
// HEALTHCHECK decision, labels; and, unless -short, runs the same go build
// and checks the binary is static.
func TestDockerfiles(t *testing.T) {
	cloudPorts := []string{defaultPort(t, "cloud/server/config.go", "DefaultListen"), defaultPort(t, "cloud/server/config.go", "DefaultAdminListen"),
		defaultPort(t, "cloud/server/config.go", "DefaultKinesisListen")}
	agentPorts := []string{defaultPort(t, "edge/agent/config.go", "DefaultMQTTListen"), defaultPort(t, "edge/agent/config.go", "DefaultListen")}
	for _, tc := range []struct {
		file, binary, cmd string
		ports             []string
	}{
		{"Dockerfile.agent", "tributary-agent", "edge/cmd/tributary-agent", agentPorts},
		{"Dockerfile.cloud", "tributary-cloud", "cloud/cmd/tributary-cloud", cloudPorts},
		{"Dockerfile.sim", "tributary-sim", "simulator/cmd/tributary-sim", nil},
		{"Dockerfile.node", "tributary-node", "firmware/cmd/tributary-node", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			file := filepath.Join("docker", tc.file)
			stages := parseDockerfile(t, file)
			if len(stages) < 2 {
				t.Fatalf("%d stages: want a builder and a final stage", len(stages))
			}
			for _, st := range stages {
				img := st.image
				if i := strings.LastIndex(img, "@"); i >= 0 {
					continue // pinned by digest
				}
				_, tag, ok := strings.Cut(img[strings.LastIndex(img, "/")+1:], ":")
				if img != "scratch" && (!ok || tag == "" || strings.Contains(tag, "latest")) {
					t.Errorf("FROM %s: pin a tag other than latest", img)
				}
			}
			if _, err := os.Stat(file + ".dockerignore"); err != nil {
				t.Errorf("no %s.dockerignore: the build context would carry .git and .tools", tc.file)
			}

			// The builder.
			build := stages[0]
			if !strings.HasPrefix(build.image, "golang:1.26") {
				t.Errorf("builder FROM %s: want golang:1.26 (go.mod's Go)", build.image)
			}
			vars := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH, "TARGETVARIANT": "", "VERSION": "test"}
			gb := findGoBuild(t, file, build, vars)
			if gb.env["CGO_ENABLED"] != "0" {
				t.Errorf("CGO_ENABLED=%q in the build: want 0 (static binary for distroless/static)", gb.env["CGO_ENABLED"])
			}
			if !slices.Contains(gb.args, "-trimpath") {
				t.Errorf("go build %v: want -trimpath", gb.args)
			}
			if gb.pkg != "./"+tc.cmd {
				t.Errorf("builds %q, want ./%s", gb.pkg, tc.cmd)
			}
			main := filepath.Join(root, gb.pkg, "main.go")
			if b, err := os.ReadFile(main); err != nil || !strings.Contains(string(b), "package main") {
				t.Errorf("%s: not a command in the repository (%v)", gb.pkg, err)
			}
			if path.Base(gb.out) != tc.binary {
				t.Errorf("go build -o %s: want the binary %s", gb.out, tc.binary)
			}

			// The final stage.
			final := stages[len(stages)-1]
			if final.image != "scratch" && !strings.HasPrefix(final.image, "gcr.io/distroless/static") {
				t.Errorf("final FROM %s: want gcr.io/distroless/static-debian12:nonroot or scratch", final.image)
			}
			users := final.all("USER")
			if len(users) == 0 {
				t.Errorf("final stage has no USER: it would run as root")
			} else if u := users[len(users)-1].args; u == "root" || u == "0" || strings.HasPrefix(u, "0:") || strings.HasPrefix(u, "root:") {
				t.Errorf("final USER %s is root", u)
			}
			copied := false
			for _, in := range final.all("COPY") {
				if strings.Contains(in.args, "--from="+build.name) && strings.Contains(in.args, gb.out) {
					copied = true
				}
			}
			if !copied {
				t.Errorf("the final stage does not COPY --from=%s %s", build.name, gb.out)
			}
			if ep := final.all("ENTRYPOINT"); len(ep) != 1 || !strings.Contains(ep[0].args, "/"+tc.binary+`"`) {
				t.Errorf("ENTRYPOINT %v: want the exec form running %s", ep, tc.binary)
			}
			if len(final.all("VOLUME")) == 0 {
				t.Errorf("no VOLUME for the data folder")
			}
			if len(final.all("HEALTHCHECK")) != 1 {
				t.Errorf("want one HEALTHCHECK (NONE, with the reason, in distroless)")
			}
			var exposed []string
			for _, in := range final.all("EXPOSE") {
				exposed = append(exposed, strings.Fields(in.args)...)
			}
			slices.Sort(exposed)
			want := slices.Sorted(slices.Values(tc.ports))
			if !slices.Equal(exposed, want) {
				t.Errorf("EXPOSE %v, want the code's default ports %v", exposed, want)
			}
			labels := ""
			for _, in := range final.all("LABEL") {
				labels += in.args
			}
			for _, l := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source"} {
				if !strings.Contains(labels, l) {
					t.Errorf("no LABEL %s", l)
				}
			}

			if testing.Short() {
				return
			}
			// The same build, here.
			out := filepath.Join(t.TempDir(), tc.binary)
			gb.build(t, out)
			ef, err := elf.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer ef.Close()
			for _, p := range ef.Progs {
				if p.Type == elf.PT_INTERP {
					t.Errorf("%s has an ELF interpreter: not static, it would not run on distroless/static", tc.binary)
				}
			}
			t.Logf("go build %s: ok", strings.Join(gb.args, " "))
		})
	}
}
