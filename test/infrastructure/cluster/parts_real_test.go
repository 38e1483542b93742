package cluster_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/kind/pkg/cluster/nodes"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
	"github.com/kindling-dev/kindling/test/infrastructure/load"
)

// layoutInParts loads two images that share a 48 MiB base into the node from an archive layout:
// the first comes in two parts (the base as a partial image, then the rest), the second without
// the base, which the node holds unpacked. The node ends with both images unpacked once, no
// partial image and no layer blob; the first runs; the archive is empty.
func layoutInParts(t *testing.T, ctx context.Context, ns []nodes.Node) {
	saved, refs := sharedBaseImages(t)
	v, err := archive.WriteLayout(ctx, t.TempDir(), "parts", "run1", refs,
		func(_ context.Context, w io.Writer) error { _, err := w.Write(saved); return err })
	if err != nil {
		t.Fatal(err)
	}
	l, err := archive.OpenLayout(v.Path, v.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	logf := func(format string, args ...any) {
		fmt.Fprintf(&logged, format+"\n", args...)
		t.Logf(time.Now().Format("05.000 ")+format, args...)
	}
	res, err := load.Layout(ctx, ns, l, load.Options{Log: logf}, func(img archive.LayoutImage) error {
		_, err := l.Release(l.Images[indexOf(l, img)+1:])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Images) != 2 {
		t.Errorf("loaded %+v", res)
	}
	for _, want := range []string{"image 1/2 [" + refs[0] + "] part 1/2 (48MiB of layers)", "image 1/2 [" + refs[0] + "] part 2/2 (24MiB", "image 2/2 [" + refs[1] + "] (24MiB"} {
		if !strings.Contains(logged.String(), want) {
			t.Errorf("the load's log lacks %q", want)
		}
	}
	n := ns[0]
	listed := nodeOutput(t, ctx, n, "ctr", "--namespace=k8s.io", "images", "ls", "-q")
	if strings.Contains(listed, archive.PartialRepo) {
		t.Errorf("partial images left on the node:\n%s", listed)
	}
	snapshotter, err := load.Snapshotter(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	var described []archive.Image
	for _, img := range l.Images {
		described = append(described, img.Described()...)
	}
	f, err := load.ImagesFootprint(ctx, n, snapshotter, described)
	if err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	if f.Content > mib || f.Snapshots < 96*mib || f.Snapshots > 100*mib {
		t.Errorf("node keeps %d bytes of blobs and %d of snapshots; want the configs only and the 96 MiB of layers unpacked once", f.Content, f.Snapshots)
	}
	if out := nodeOutput(t, ctx, n, "ctr", "--namespace=k8s.io", "run", "--rm", refs[0], "parts-"+randHex(t, 3)); !strings.Contains(out, "hello from kindling") {
		t.Errorf("the first image does not run: %q", out)
	}
	if left, _ := filepath.Glob(filepath.Join(v.Path, "blobs", "sha256", "*")); len(left) != 0 {
		t.Errorf("the archive still holds %d blobs", len(left))
	}
}

func indexOf(l archive.Layout, img archive.LayoutImage) int {
	for i, x := range l.Images {
		if x.ID == img.ID {
			return i
		}
	}
	return -1
}

func nodeOutput(t *testing.T, ctx context.Context, n nodes.Node, argv ...string) string {
	t.Helper()
	var out, stderr bytes.Buffer
	if err := n.CommandContext(ctx, argv[0], argv[1:]...).SetStdout(&out).SetStderr(&stderr).Run(); err != nil {
		t.Fatalf("node %s: %v: %v\n%s", n, argv, err, stderr.String())
	}
	return out.String()
}

// sharedBaseImages is a docker-archive of two images on one 48 MiB base of random bytes; the
// first adds a static hello binary and 24 MiB, the second 24 MiB.
func sharedBaseImages(t *testing.T) ([]byte, []string) {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "go.mod"), "module hello\n\ngo 1.24\n")
	write(t, filepath.Join(dir, "main.go"), "package main\n\nimport \"os\"\n\nfunc main() { os.Stdout.WriteString(\"hello from kindling\\n\") }\n")
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, "hello"), ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	runCmd(t, build)
	hello, err := os.ReadFile(filepath.Join(dir, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	const mib = 1 << 20
	base := layerTar(t, map[string][]byte{"base": random(48*mib - 4096)})
	a := layerTar(t, map[string][]byte{"hello": hello, "a": random(24*mib - 4096 - len(hello) - 1024)})
	b := layerTar(t, map[string][]byte{"b": random(24*mib - 4096)})
	sum := func(data []byte) string { s := sha256.Sum256(data); return hex.EncodeToString(s[:]) }
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	for _, layer := range [][]byte{base, a, b} {
		add(sum(layer)+".tar", layer)
	}
	tag := randHex(t, 4)
	var entries []map[string]any
	var refs []string
	for _, img := range []struct {
		name   string
		layers [][]byte
	}{{"a", [][]byte{base, a}}, {"b", [][]byte{base, b}}} {
		var diffIDs, files []string
		for _, layer := range img.layers {
			diffIDs = append(diffIDs, "sha256:"+sum(layer))
			files = append(files, sum(layer)+".tar")
		}
		config, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
			"config":  map[string]any{"Entrypoint": []string{"/hello"}},
			"rootfs":  map[string]any{"type": "layers", "diff_ids": diffIDs},
			"history": []map[string]any{{"created_by": "base"}, {"created_by": img.name}}})
		add(sum(config)+".json", config)
		ref := "localhost/kindling-parts-" + img.name + ":" + tag
		refs = append(refs, ref)
		entries = append(entries, map[string]any{"Config": sum(config) + ".json", "RepoTags": []string{ref}, "Layers": files})
	}
	m, _ := json.Marshal(entries)
	add("manifest.json", m)
	tw.Close()
	return out.Bytes(), refs
}

func layerTar(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for name, data := range files {
		mode := int64(0o644)
		if name == "hello" {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return out.Bytes()
}
