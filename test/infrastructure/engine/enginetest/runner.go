// Package enginetest holds test helpers for code that runs container engines: a Runner that
// records argv and answers from a script, and helpers for integration tests against real engines.
package enginetest

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/kindling-dev/kindling/test/infrastructure/engine"
)

// Response is what a scripted command prints and returns.
type Response struct {
	Stdout string
	Stderr string
	Err    error
}

// Runner records every command and answers from its script. Safe for concurrent use.
type Runner struct {
	mu     sync.Mutex
	calls  []engine.Cmd
	script []rule
	// Func, when set, is asked first; ok=false falls through to the script.
	Func func(cmd engine.Cmd) (resp Response, ok bool)
}

type rule struct {
	prefix string
	resp   Response
}

// On answers commands whose argv (joined with spaces) starts with prefix; the longest matching
// prefix wins, and among equal ones the latest. Unmatched commands succeed silently.
func (r *Runner) On(prefix string, resp Response) *Runner {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.script = append(r.script, rule{prefix: prefix, resp: resp})
	return r
}

// Run records cmd and replays the scripted response.
func (r *Runner) Run(ctx context.Context, cmd engine.Cmd) error {
	recorded := cmd
	recorded.Args = slices.Clone(cmd.Args)
	recorded.Env = slices.Clone(cmd.Env)
	if cmd.Stdin != nil {
		// Drain stdin like a real program would, so writers feeding it do not block.
		_, _ = io.Copy(io.Discard, cmd.Stdin)
	}
	r.mu.Lock()
	r.calls = append(r.calls, recorded)
	handler := r.Func
	r.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	resp, ok := Response{}, false
	if handler != nil {
		resp, ok = handler(recorded)
	}
	if !ok {
		resp = r.lookup(Argv(recorded))
	}
	if cmd.Stdout != nil {
		_, _ = io.WriteString(cmd.Stdout, resp.Stdout)
	}
	if cmd.Stderr != nil {
		_, _ = io.WriteString(cmd.Stderr, resp.Stderr)
	}
	return resp.Err
}

func (r *Runner) lookup(argv string) Response {
	r.mu.Lock()
	defer r.mu.Unlock()
	best, found := rule{}, false
	for _, candidate := range r.script {
		if strings.HasPrefix(argv, candidate.prefix) && (!found || len(candidate.prefix) >= len(best.prefix)) {
			best, found = candidate, true
		}
	}
	return best.resp
}

// Calls returns the recorded commands in order.
func (r *Runner) Calls() []engine.Cmd {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Argvs returns the recorded commands as argv strings joined with spaces.
func (r *Runner) Argvs() []string {
	var argvs []string
	for _, cmd := range r.Calls() {
		argvs = append(argvs, Argv(cmd))
	}
	return argvs
}

// Argv joins a command's name and arguments with spaces.
func Argv(cmd engine.Cmd) string {
	return strings.TrimSpace(fmt.Sprintf("%s %s", cmd.Name, strings.Join(cmd.Args, " ")))
}

// ExitError is a stand-in for a non-zero exit status.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }
