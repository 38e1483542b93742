// Package e2etest runs a suite's e2e tests with `go test -json` and reads the events the go
// command writes (test2json): the output a person reads, the counts for the summary, and a JUnit
// XML report for CI systems.
package e2etest

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Options say what to run and where.
type Options struct {
	Dir     string        // the module root (go test runs there)
	Package string        // e.g. ./test/e2e/aianalysis
	Timeout time.Duration // go test -timeout
	Env     []string      // added to the environment (KUBECONFIG, <NAME>_URL, ...)
	// JUnit, when set, is where the JUnit XML report is written.
	JUnit string
	// Out receives the tests' output as go test -v prints it.
	Out io.Writer
}

// Counts counts the tests by outcome; a test with subtests counts as its subtests.
type Counts struct{ Passed, Failed, Skipped int }

func (c Counts) String() string {
	return fmt.Sprintf("%d passed, %d failed, %d skipped", c.Passed, c.Failed, c.Skipped)
}

// Run runs `go test -json -tags e2e` on the package. It fails when a test fails, when the
// package does not build, and when no test ran.
func Run(ctx context.Context, o Options) (Counts, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return Counts{}, fmt.Errorf("the go command is needed to run the e2e tests: %w", err)
	}
	cmd := exec.CommandContext(ctx, goBin, "test", "-json", "-tags", "e2e", "-count=1", "-timeout", o.Timeout.String(), o.Package)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), o.Env...)
	// go test runs the test binary as a child: cancel the whole process group, so Ctrl-C stops
	// the tests too, and don't wait forever for output from a child that ignores it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 10 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return Counts{}, err
	}
	var stderr strings.Builder
	cmd.Stderr = io.MultiWriter(&stderr, orDiscard(o.Out))
	if err := cmd.Start(); err != nil {
		return Counts{}, err
	}
	results := Read(stdout, orDiscard(o.Out))
	err = cmd.Wait()
	counts := results.Counts()
	if o.JUnit != "" {
		if jerr := results.WriteJUnit(o.JUnit); jerr != nil {
			err = fmt.Errorf("%w; and the JUnit report: %v", err, jerr)
		}
	}
	if err != nil {
		return counts, fmt.Errorf("e2e tests %s failed (%s): %w", o.Package, counts, err)
	}
	if counts.Passed == 0 {
		return counts, fmt.Errorf("e2e tests %s: no test ran", o.Package)
	}
	return counts, nil
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Time    time.Time `json:"Time"`
	Action  string    `json:"Action"`
	Package string    `json:"Package"`
	Test    string    `json:"Test"`
	Elapsed float64   `json:"Elapsed"`
	Output  string    `json:"Output"`
}

// Test is one test's outcome.
type Test struct {
	Package string
	Name    string
	Action  string // pass, fail or skip
	Elapsed time.Duration
	Output  string
}

// Results are the tests of one go test run, in the order they ended.
type Results struct {
	Tests []Test
	// Packages maps each package to its own outcome (a build failure is a package failure).
	Packages map[string]Test
}

// Read reads go test -json events, writes every output line to out, and collects the outcomes.
// Lines that are not events (a build error before the tests) are written through as they are.
func Read(r io.Reader, out io.Writer) Results {
	res := Results{Packages: map[string]Test{}}
	output := map[string]*strings.Builder{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(out, sc.Text())
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "build-output":
			io.WriteString(out, e.Output)
		case "output":
			io.WriteString(out, e.Output)
			if output[key] == nil {
				output[key] = &strings.Builder{}
			}
			output[key].WriteString(e.Output)
		case "pass", "fail", "skip":
			t := Test{Package: e.Package, Name: e.Test, Action: e.Action,
				Elapsed: time.Duration(e.Elapsed * float64(time.Second))}
			if b := output[key]; b != nil {
				t.Output = b.String()
			}
			if e.Test == "" {
				res.Packages[e.Package] = t
			} else {
				res.Tests = append(res.Tests, t)
			}
		}
	}
	return res
}

// Counts counts leaf tests: a test with subtests counts as its subtests, unless it failed on
// its own while they all passed.
func (r Results) Counts() Counts {
	var c Counts
	for _, t := range r.Tests {
		if sub := r.subtests(t); len(sub) > 0 && (t.Action != "fail" || slices.ContainsFunc(sub, func(s Test) bool { return s.Action == "fail" })) {
			continue
		}
		switch t.Action {
		case "pass":
			c.Passed++
		case "fail":
			c.Failed++
		case "skip":
			c.Skipped++
		}
	}
	return c
}

func (r Results) subtests(parent Test) []Test {
	var out []Test
	for _, t := range r.Tests {
		if t.Package == parent.Package && strings.HasPrefix(t.Name, parent.Name+"/") {
			out = append(out, t)
		}
	}
	return out
}

type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Skipped  int         `xml:"skipped,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the results as JUnit XML: one testsuite per package, one testcase per test
// (subtests included, as CI systems show them), a failed package without tests as one case.
func (r Results) WriteJUnit(path string) error {
	byPackage := map[string]*junitSuite{}
	var order []string
	suite := func(pkg string) *junitSuite {
		if byPackage[pkg] == nil {
			byPackage[pkg] = &junitSuite{Name: pkg}
			order = append(order, pkg)
		}
		return byPackage[pkg]
	}
	for _, t := range r.Tests {
		s := suite(t.Package)
		c := junitCase{Name: t.Name, Classname: t.Package, Time: seconds(t.Elapsed)}
		switch t.Action {
		case "fail":
			c.Failure = &junitMessage{Message: "failed", Text: t.Output}
			s.Failures++
		case "skip":
			c.Skipped = &junitMessage{Message: "skipped", Text: t.Output}
			s.Skipped++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	for pkg, p := range r.Packages {
		s := suite(pkg)
		s.Time = seconds(p.Elapsed)
		if p.Action == "fail" && s.Failures == 0 {
			s.Cases = append(s.Cases, junitCase{Name: "package", Classname: pkg, Failure: &junitMessage{Message: "package failed", Text: p.Output}})
			s.Tests++
			s.Failures++
		}
	}
	doc := junitSuites{}
	for _, pkg := range order {
		doc.Suites = append(doc.Suites, *byPackage[pkg])
	}
	data, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append([]byte(xml.Header), append(data, '\n')...), 0o644)
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// Compilation is a test binary being compiled in the background, so that Run later finds every
// package in Go's build cache and only links.
type Compilation struct {
	done  chan struct{}
	err   error
	took  time.Duration
	start time.Time
}

// Compile starts `go test -c` of the package with the options' environment, writing the binary
// to a temporary directory in dir that it removes; only the build cache it fills is kept.
func Compile(ctx context.Context, o Options, dir string) *Compilation {
	c := &Compilation{done: make(chan struct{}), start: time.Now()}
	go func() {
		defer close(c.done)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			c.err = err
			return
		}
		dir, err := os.MkdirTemp(dir, "e2e-binary-")
		if err != nil {
			c.err = err
			return
		}
		defer os.RemoveAll(dir)
		cmd := exec.CommandContext(ctx, "go", "test", "-c", "-tags", "e2e", "-o", filepath.Join(dir, "e2e.test"), o.Package)
		cmd.Dir = o.Dir
		cmd.Env = append(os.Environ(), o.Env...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			c.err = fmt.Errorf("go test -c %s: %w: %s", o.Package, err, strings.TrimSpace(string(out)))
		}
		c.took = time.Since(c.start)
	}()
	return c
}

// Wait waits for the compilation and returns how long it took.
func (c *Compilation) Wait() (time.Duration, error) {
	<-c.done
	return c.took, c.err
}
