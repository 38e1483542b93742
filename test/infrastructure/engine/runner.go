package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Cmd is one program invocation: an argv, never a shell string.
type Cmd struct {
	Name string
	Args []string
	// Dir is the working directory; empty means the current one.
	Dir string
	// Env holds extra KEY=value entries added to the current environment.
	Env    []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Runner runs commands. Tests substitute a fake that records the argv.
type Runner interface {
	Run(ctx context.Context, cmd Cmd) error
}

// ExecRunner runs commands with os/exec. A missing binary yields an error wrapping exec.ErrNotFound.
type ExecRunner struct{}

// Run starts cmd and waits for it; cancelling ctx kills the process.
func (ExecRunner) Run(ctx context.Context, cmd Cmd) error {
	c := exec.CommandContext(ctx, cmd.Name, cmd.Args...)
	c.Dir = cmd.Dir
	if len(cmd.Env) > 0 {
		c.Env = append(os.Environ(), cmd.Env...)
	}
	c.Stdin = cmd.Stdin
	c.Stdout = cmd.Stdout
	c.Stderr = cmd.Stderr
	// Do not hang on pipes held open by grandchildren after the process was killed.
	c.WaitDelay = 10 * time.Second
	return c.Run()
}

// Output runs cmd through runner (nil means ExecRunner) and returns its stdout; a failure's error
// is Quiet's.
func Output(ctx context.Context, runner Runner, cmd Cmd) ([]byte, error) {
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	err := Quiet(ctx, runner, cmd)
	return stdout.Bytes(), err
}

// Quiet runs cmd through runner (nil means ExecRunner) keeping the tail of its stderr (also
// written to cmd.Stderr when set); a failure's
// error names the command and quotes the last lines of that stderr, and wraps the cause
// (exec.ErrNotFound for a missing program).
func Quiet(ctx context.Context, runner Runner, cmd Cmd) error {
	if runner == nil {
		runner = ExecRunner{}
	}
	stderr := NewTailBuffer(64 << 10)
	if cmd.Stderr != nil { // the caller reads it too
		cmd.Stderr = io.MultiWriter(cmd.Stderr, stderr)
	} else {
		cmd.Stderr = stderr
	}
	err := runner.Run(ctx, cmd)
	if err == nil {
		return nil
	}
	command := cmd.Name + " " + strings.Join(cmd.Args, " ")
	if ctx.Err() != nil && !errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("%s: interrupted: %w", command, ctx.Err())
	}
	return &commandError{command: command, err: err, stderr: LastLines(stderr.String(), 20)}
}
