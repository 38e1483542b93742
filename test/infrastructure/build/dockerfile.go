package build

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
)

// Dockerfile is what the build needs to know of a Dockerfile before an engine sees it.
type Dockerfile struct {
	// Stages are the stage names in order ("" for an unnamed stage).
	Stages []string
	// Bases are the images the build pulls when missing: the FROM images of the stages up to the
	// target (the legacy builders build every earlier stage too), with ARGs expanded; stage names
	// and "scratch" are left out.
	Bases []string
	// Runtime is the image the target stage starts from, through stages built on stages; ""
	// for scratch. Its layers are shared by every image built on it.
	Runtime string
	// Mounts are the lines of RUN --mount instructions, which docker's legacy builder rejects.
	Mounts []int
	// CacheMounts are its cache mounts (RUN --mount=type=cache).
	CacheMounts []engine.CacheMount
	// Steps are the first stage's instructions as written, its FROM with build args expanded:
	// builds whose Steps begin alike (same context, same args) share those layers.
	Steps []string
}

// ParseDockerfile reads a Dockerfile with BuildKit's own parser and checks that target names one
// of its stages ("" means the last). args are the build args, which override the defaults of the
// ARGs before the first FROM. Errors name the file and, where the parser knows it, the line.
func ParseDockerfile(path, target string, args map[string]string) (Dockerfile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Dockerfile{}, err
	}
	ast, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return Dockerfile{}, fmt.Errorf("%s%s: %v", path, lineOf(err), err)
	}
	stages, metaArgs, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return Dockerfile{}, fmt.Errorf("%s%s: %v", path, lineOf(err), err)
	}
	if len(stages) == 0 {
		return Dockerfile{}, fmt.Errorf("%s: no FROM instruction", path)
	}
	var df Dockerfile
	last := len(stages) - 1
	for i, s := range stages {
		df.Stages = append(df.Stages, s.Name)
		if target != "" && strings.EqualFold(s.Name, target) {
			last = i
		}
	}
	if target != "" && !slices.ContainsFunc(df.Stages, func(n string) bool { return strings.EqualFold(n, target) }) {
		return Dockerfile{}, fmt.Errorf("%s: target stage %q not found; its stages are %s", path, target, stageList(df.Stages))
	}

	env := map[string]string{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if v, ok := args[kv.Key]; ok {
				env[kv.Key] = v
			} else if kv.Value != nil {
				env[kv.Key] = *kv.Value
			}
		}
	}
	lex := shell.NewLex(ast.EscapeToken)
	expand := func(word string) (string, error) {
		out, _, err := lex.ProcessWord(word, envGetter(env))
		return out, err
	}
	for _, s := range stages {
		for _, cmd := range s.Commands {
			run, ok := cmd.(*instructions.RunCommand)
			if !ok || len(instructions.GetMounts(run)) == 0 {
				continue
			}
			if err := run.Expand(expand); err != nil {
				return Dockerfile{}, fmt.Errorf("%s%s: RUN --mount: %v", path, lineOf(parser.WithLocation(err, run.Location())), err)
			}
			df.Mounts = append(df.Mounts, run.Location()[0].Start.Line)
			for _, m := range instructions.GetMounts(run) {
				if m.Type != instructions.MountTypeCache {
					continue
				}
				// BuildKit and buildah name a cache without an id by its target.
				c := engine.CacheMount{ID: cmp.Or(m.CacheID, m.Target), Target: m.Target}
				if !slices.Contains(df.CacheMounts, c) {
					df.CacheMounts = append(df.CacheMounts, c)
				}
			}
		}
	}
	for _, cmd := range stages[0].Commands {
		if step, ok := cmd.(fmt.Stringer); ok {
			df.Steps = append(df.Steps, step.String())
		}
	}
	named := map[string]string{} // stage name → the image it starts from
	for i, s := range stages[:last+1] {
		base, _, err := lex.ProcessWord(s.BaseName, envGetter(env))
		if err != nil {
			return Dockerfile{}, fmt.Errorf("%s%s: FROM %s: %v", path, lineOf(parser.WithLocation(err, s.Location)), s.BaseName, err)
		}
		base = strings.ToLower(base)
		if base == "" {
			return Dockerfile{}, fmt.Errorf("%s: stage %d: FROM %s is empty after expanding build args; set the arg in the service's args", path, i, s.BaseName)
		}
		if i == 0 {
			df.Steps = append([]string{"FROM " + base}, df.Steps...)
		}
		image, isStage := named[base]
		if !isStage {
			image = base
			if base == "scratch" {
				image = ""
			} else if !slices.Contains(df.Bases, base) {
				df.Bases = append(df.Bases, base)
			}
		}
		if s.Name != "" {
			named[strings.ToLower(s.Name)] = image
		}
		df.Runtime = image
	}
	return df, nil
}

// lineOf returns ":<line>" for errors that carry a location in the Dockerfile.
func lineOf(err error) string {
	var located *parser.LocationError
	if errors.As(err, &located) && len(located.Locations) > 0 && len(located.Locations[0]) > 0 {
		return ":" + strconv.Itoa(located.Locations[0][0].Start.Line)
	}
	return ""
}

func stageList(stages []string) string {
	var names []string
	for i, s := range stages {
		if s == "" {
			s = strconv.Itoa(i) + " (unnamed)"
		}
		names = append(names, s)
	}
	return strings.Join(names, ", ")
}

type envGetter map[string]string

func (e envGetter) Get(key string) (string, bool) { v, ok := e[key]; return v, ok }

func (e envGetter) Keys() []string {
	var keys []string
	for k := range e {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
