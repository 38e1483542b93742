package engine

import (
	"context"
	"io"
	"os"
	"os/exec"
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
