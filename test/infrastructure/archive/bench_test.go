package archive_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kindling-dev/kindling/test/infrastructure/archive"
)

// The suite's three images, as the build phase names them.
var suiteRefs = []string{
	"localhost/datastorage:aianalysis-0123456789ab",
	"localhost/holmesgpt-api:aianalysis-123456789abc",
	"localhost/aianalysis:aianalysis-23456789abcd",
}

// benchLayer returns a layer tar holding one file of size incompressible (pseudo-random) bytes.
func benchLayer(b *testing.B, seed uint64, name string, size int) []byte {
	b.Helper()
	content := make([]byte, size)
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = rng.Read(content)
	var buf bytes.Buffer
	buf.Grow(size + 4096)
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
		b.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		b.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// suiteArchive writes a podman-style docker-archive (`podman save --format docker-archive -m`) of
// the suite's three images to a temporary file: one small base layer shared by all three, then a
// binary layer each of 6 MiB, 6 MiB and 45 MiB, a config per image and manifest.json. It returns
// the path and the file's size. Every layer is divided by shrink (1 for the real sizes).
func suiteArchive(b *testing.B, shrink int) (string, int64) {
	b.Helper()
	base := benchLayer(b, 1, "etc/base", 256<<10/shrink)
	binaries := []struct {
		name string
		size int
	}{{"datastorage", 6 << 20 / shrink}, {"holmesgpt-api", 6 << 20 / shrink}, {"aianalysis", 45 << 20 / shrink}}

	path := filepath.Join(b.TempDir(), "aianalysis-run.tar")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	add := func(name string, data []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	add(sum(base)+".tar", base)
	var entries []map[string]any
	for i, bin := range binaries {
		layer := benchLayer(b, uint64(i+2), bin.name, bin.size)
		config := configFor(bin.name, base, layer)
		add(sum(layer)+".tar", layer)
		add(sum(config)+".json", config)
		entries = append(entries, map[string]any{
			"Config":   sum(config) + ".json",
			"RepoTags": []string{suiteRefs[i]},
			"Layers":   []string{sum(base) + ".tar", sum(layer) + ".tar"},
		})
	}
	add("manifest.json", manifest(entries...))
	add("repositories", []byte(`{}`))
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return path, info.Size()
}

// BenchmarkVerify verifies a ~57 MiB suite archive. Verify streams: B/op must stay a small,
// constant amount (a read buffer per member, maps, the parsed JSON), not grow with the layers'
// sizes; compare with BenchmarkVerifySmallLayers, the same archive with layers 64 times smaller.
func BenchmarkVerify(b *testing.B) { benchmarkVerify(b, 1) }

// BenchmarkVerifySmallLayers is BenchmarkVerify's archive with every layer 64 times smaller: its
// B/op and allocs/op should match BenchmarkVerify's.
func BenchmarkVerifySmallLayers(b *testing.B) { benchmarkVerify(b, 64) }

func benchmarkVerify(b *testing.B, shrink int) {
	path, size := suiteArchive(b, shrink)
	// Once outside the timed loop: the crafted archive is valid.
	if v, err := archive.Verify(path, suiteRefs); err != nil || len(v.Images) != 3 {
		b.Fatalf("Verify = %+v, %v", v, err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := archive.Verify(path, suiteRefs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size), "archive-bytes")
}

// BenchmarkWriteLayout streams the same archive, as an engine's save would, into a layout,
// verifying it as it writes: export's own path.
func BenchmarkWriteLayout(b *testing.B) {
	path, size := suiteArchive(b, 1)
	dir := b.TempDir()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := archive.WriteLayout(context.Background(), dir, "aianalysis", "run", suiteRefs, saveStream(path)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLayoutCheck rehashes every blob of the layout, as a new process does before it
// trusts a recorded archive.
func BenchmarkLayoutCheck(b *testing.B) {
	path, size := suiteArchive(b, 1)
	v, err := archive.WriteLayout(context.Background(), b.TempDir(), "aianalysis", "run", suiteRefs, saveStream(path))
	if err != nil {
		b.Fatal(err)
	}
	l, err := archive.OpenLayout(v.Path, v.SHA256)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Check(l.Images); err != nil {
			b.Fatal(err)
		}
	}
}
