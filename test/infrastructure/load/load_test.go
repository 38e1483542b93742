package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	units "github.com/docker/go-units"
	"sigs.k8s.io/kind/pkg/cluster/nodes"
	"sigs.k8s.io/kind/pkg/exec"
)

// Real loading into real clusters is tested in test/infrastructure/cluster (one cluster per
// provider for both packages).

func readTestdata(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseCrictlImages(t *testing.T) {
	imgs, err := parseCrictlImages([]byte(readTestdata(t, "crictl-images.json")))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) < 2 {
		t.Fatalf("parsed %d images, want the node's preloaded ones", len(imgs))
	}
	want := Image{Ref: testRef, ID: testID}
	if got := missing(imgs, []Image{want}); len(got) != 0 {
		t.Errorf("missing = %v, want the loaded test image present", got)
	}
	for _, w := range []Image{
		{Ref: testRef, ID: "sha256:" + strings.Repeat("0", 64)},              // other ID
		{Ref: "localhost/kindling-loadtest:other", ID: testID},               // other tag
		{Ref: "localhost/absent:1", ID: "sha256:" + strings.Repeat("1", 64)}, // absent
	} {
		if got := missing(imgs, []Image{want, w}); len(got) != 1 || got[0] != w {
			t.Errorf("missing(%v) = %v", w, got)
		}
	}
	for _, bad := range []string{"", "{}", `{"images":1}`, "WARN cgroup v1"} {
		if _, err := parseCrictlImages([]byte(bad)); err == nil {
			t.Errorf("parseCrictlImages(%q) = nil error", bad)
		}
	}
	if imgs, err := parseCrictlImages([]byte(`{"images":[]}`)); err != nil || len(imgs) != 0 {
		t.Errorf("empty list: %v, %v", imgs, err)
	}
}

func TestParseSnapshotter(t *testing.T) {
	if s, err := parseSnapshotter(readTestdata(t, "containerd-config-dump.toml")); err != nil || s != "overlayfs" {
		t.Errorf("node config: %q, %v; want overlayfs", s, err)
	}
	v2 := "version = 2\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n      snapshotter = \"native\"\n"
	if s, err := parseSnapshotter(v2); err != nil || s != "native" {
		t.Errorf("version 2: %q, %v", s, err)
	}
	for _, bad := range []string{"", "version = 3\n", "version = 9\n", "version = 3\n[plugins.\"io.containerd.cri.v1.images\"]\nsnapshotter = \"\"\n"} {
		if s, err := parseSnapshotter(bad); err == nil {
			t.Errorf("parseSnapshotter(%q) = %q, nil error", bad, s)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := validate([]Image{{Ref: testRef, ID: testID}}); err != nil {
		t.Error(err)
	}
	for _, bad := range [][]Image{nil, {{Ref: "", ID: testID}}, {{Ref: testRef, ID: "0123"}}, {{Ref: testRef, ID: strings.TrimPrefix(testID, "sha256:")}}} {
		if err := validate(bad); err == nil {
			t.Errorf("validate(%v) = nil", bad)
		}
	}
}

func TestArchive(t *testing.T) {
	verifyTimeout, verifyInterval = 300*time.Millisecond, 10*time.Millisecond
	archive := filepath.Join(t.TempDir(), "images.tar")
	if err := os.WriteFile(archive, []byte("archive bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := readTestdata(t, "crictl-images-before.json")
	after := readTestdata(t, "crictl-images.json")
	config := readTestdata(t, "containerd-config-dump.toml")
	want := []Image{{Ref: testRef, ID: testID}}
	ctx := context.Background()

	empty := &fakeNode{name: "n1", images: before, importTo: after, config: config}
	loaded := &fakeNode{name: "n2", images: after, config: config}
	res, err := Archive(ctx, []nodes.Node{empty, loaded}, archive, want, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Nodes) != 2 || !res.Nodes[0].Imported || res.Nodes[1].Imported || res.Nodes[0].Name != "n1" {
		t.Errorf("results %+v: want n1 imported, n2 skipped", res.Nodes)
	}
	if len(res.Images) != 1 || res.Images[0] != want[0] {
		t.Errorf("images %v", res.Images)
	}
	if got := empty.stdin; got != "archive bytes" {
		t.Errorf("import stdin %q, want the archive", got)
	}
	wantImport := "ctr --namespace=k8s.io images import --local --discard-unpacked-layers --platform linux/" + runtime.GOARCH + " --digests --snapshotter=overlayfs -"
	if got := strings.Join(empty.imported, " "); got != wantImport {
		t.Errorf("import command %q, want %q", got, wantImport)
	}
	if miss, err := Missing(ctx, empty, want); err != nil || len(miss) != 0 {
		t.Errorf("Missing after import = %v, %v", miss, err)
	}
	if loaded.imported != nil {
		t.Errorf("node with the images imported again: %v", loaded.imported)
	}
	if empty.collections != 1 {
		t.Errorf("%d garbage collections after the import, want 1: the discarded blobs would stay until containerd's next one", empty.collections)
	}

	// the import "succeeds" but the image does not show up
	broken := &fakeNode{name: "n3", images: before, importTo: before, config: config}
	_, err = Archive(ctx, []nodes.Node{broken}, archive, want, nil)
	if err == nil || !strings.Contains(err.Error(), "node n3 is missing "+testRef) {
		t.Errorf("error %v: want it to name node and image", err)
	}

	failing := &fakeNode{name: "n4", images: before, config: config, importErr: "ctr: content digest sha256:abc: not found"}
	_, err = Archive(ctx, []nodes.Node{failing}, archive, want, nil)
	if err == nil || !strings.Contains(err.Error(), "node n4") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("error %v: want node and ctr's stderr", err)
	}

	old := &fakeNode{name: "n5", images: before, importTo: after, config: config, noLocal: true}
	if res, err := Archive(ctx, []nodes.Node{old}, archive, want, t.Logf); err != nil || !res.Nodes[0].Imported {
		t.Errorf("containerd 1.x fallback: %+v, %v", res, err)
	}
	if got := strings.Join(old.imported, " "); strings.Contains(got, "--local") || old.stdin != "archive bytes" {
		t.Errorf("fallback import %q with stdin %q: want kind's flags and the whole archive again", got, old.stdin)
	}

	if _, err := Archive(ctx, []nodes.Node{loaded}, filepath.Join(t.TempDir(), "absent.tar"), want, nil); err == nil {
		t.Error("absent archive: nil error")
	}
}

const (
	testRef = "localhost/kindling-loadtest:docker"
	testID  = "sha256:c4b3b808203c1ca897fe6d9fee1c9bfba87d552685a8483a3537c323de1c1acb"
)

// fakeNode answers the commands Archive runs with captured outputs; stderr always carries
// containerd's cgroup v1 warning, as on the real nodes.
type fakeNode struct {
	name      string
	config    string
	importTo  string // crictl listing after a successful import
	importErr string // ctr's stderr on a failed import
	noLocal   bool   // ctr of containerd 1.x: no --local
	// imports, when set, says what the listing becomes after importing stdin (else importTo).
	imports func(listing, stdin string) string

	inUse string // image ID crictl rmi refuses

	mu          sync.Mutex
	collections int // synchronous garbage collections asked for
	removed     []string
	images      string
	imported    []string
	stdin       string
	streams     []string // every import's stdin
}

func (n *fakeNode) String() string              { return n.name }
func (n *fakeNode) Role() (string, error)       { return "control-plane", nil }
func (n *fakeNode) IP() (string, string, error) { return "", "", nil }
func (n *fakeNode) SerialLogs(io.Writer) error  { return nil }
func (n *fakeNode) Command(c string, a ...string) exec.Cmd {
	return n.CommandContext(context.Background(), c, a...)
}
func (n *fakeNode) CommandContext(_ context.Context, c string, a ...string) exec.Cmd {
	return &fakeCmd{node: n, argv: append([]string{c}, a...)}
}

type fakeCmd struct {
	node           *fakeNode
	argv           []string
	stdin          io.Reader
	stdout, stderr io.Writer
}

func (c *fakeCmd) SetEnv(...string) exec.Cmd      { return c }
func (c *fakeCmd) SetStdin(r io.Reader) exec.Cmd  { c.stdin = r; return c }
func (c *fakeCmd) SetStdout(w io.Writer) exec.Cmd { c.stdout = w; return c }
func (c *fakeCmd) SetStderr(w io.Writer) exec.Cmd { c.stderr = w; return c }

func (c *fakeCmd) Run() error {
	n := c.node
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintln(c.stderr, `WARN[0000] cgroup v1 support is deprecated and will be removed in a future release`)
	switch cmd := strings.Join(c.argv, " "); {
	case cmd == "crictl images -o json":
		_, err := io.WriteString(c.stdout, n.images)
		return err
	case cmd == "containerd config dump":
		_, err := io.WriteString(c.stdout, n.config)
		return err
	case strings.HasPrefix(cmd, "ctr --namespace=k8s.io images import"):
		b, err := io.ReadAll(c.stdin)
		if err != nil {
			return err
		}
		if n.noLocal && slices.Contains(c.argv, "--local") {
			fmt.Fprintln(c.stderr, "Incorrect Usage: flag provided but not defined: -local")
			return errors.New("exit status 1")
		}
		n.stdin, n.imported = string(b), c.argv
		if n.importErr != "" {
			fmt.Fprintln(c.stderr, n.importErr)
			return errors.New("exit status 1")
		}
		if n.imports != nil {
			n.images = n.imports(n.images, n.stdin)
		} else {
			n.images = n.importTo
		}
		n.streams = append(n.streams, n.stdin)
		return nil
	case cmd == "ctr --namespace=k8s.io leases create":
		n.collections++
		_, err := io.WriteString(c.stdout, "1234-lease\t2026-12-03T20:50:57Z\t\n")
		return err
	case cmd == "ctr --namespace=k8s.io leases delete --sync 1234-lease":
		return nil
	case strings.HasPrefix(cmd, "ctr --namespace=k8s.io images rm "):
		n.removed = append(n.removed, c.argv[4:]...)
		return nil
	case strings.HasPrefix(cmd, "crictl rmi "):
		if c.argv[2] == n.inUse {
			fmt.Fprintln(c.stderr, "image is in use by a container")
			return errors.New("exit status 1")
		}
		n.removed = append(n.removed, c.argv[2])
		return nil
	default:
		return fmt.Errorf("fake node: unexpected command %q", cmd)
	}
}

func TestRemoveStale(t *testing.T) {
	const old1, old2, busy, other = "sha256:01", "sha256:02", "sha256:03", "sha256:04"
	n := &fakeNode{name: "n1", inUse: busy, images: `{"images": [
		{"id": "` + testID + `", "repoTags": ["localhost/datastorage:aianalysis-new"]},
		{"id": "` + old1 + `", "repoTags": ["localhost/datastorage:aianalysis-old"]},
		{"id": "` + old2 + `", "repoTags": ["localhost/aianalysis:aianalysis-old"]},
		{"id": "` + busy + `", "repoTags": ["localhost/aianalysis:aianalysis-older"]},
		{"id": "` + other + `", "repoTags": ["registry.k8s.io/pause:3.10.1"]}
	]}`}
	stale := func(ref string) bool {
		return strings.HasPrefix(ref, "localhost/") && strings.Contains(ref, ":aianalysis-")
	}
	var logged []string
	removed, err := RemoveStale(context.Background(), []nodes.Node{n}, []Image{{Ref: "localhost/datastorage:aianalysis-new", ID: testID}}, stale,
		func(f string, a ...any) { logged = append(logged, fmt.Sprintf(f, a...)) })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(n.removed, []string{old1, old2}) {
		t.Errorf("removed %v, want the two stale images only (not the kept one, the busy one or pause)", n.removed)
	}
	if len(removed) != 2 || len(logged) != 1 || !strings.Contains(logged[0], "in use") {
		t.Errorf("removed %v, logged %v", removed, logged)
	}
}

func TestSumSizesOfCtrListings(t *testing.T) {
	content := "DIGEST\tSIZE\tAGE\tLABELS\n" +
		"sha256:aa\t424B\t3 hours\tcontainerd.io/gc.ref.content.config=sha256:bb\n" +
		"sha256:bb\t26.51MB\tAbout an hour\tcontainerd.io/uncompressed=sha256:bb\n" +
		"sha256:cc\t102.4MB\t3 hours\t\n"
	n, err := sumSizes(content, map[string]bool{"sha256:aa": true, "sha256:bb": true}, units.FromHumanSize)
	if err != nil || n != 424+26_510_000 {
		t.Errorf("content = %d, %v", n, err)
	}
	snapshots := "KEY                 SIZE      INODES\n" +
		"sha256:c1           92.0 KiB  26\n" +
		"sha256:c2           1.5 MiB   18\n" +
		"074f6e9c6171        56.0 KiB  18\n"
	n, err = sumSizes(snapshots, map[string]bool{"sha256:c1": true, "sha256:c2": true}, units.RAMInBytes)
	if err != nil || n != 92*1024+1536*1024 {
		t.Errorf("snapshots = %d, %v", n, err)
	}
}
