package build

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkInputDigest hashes a 45 MiB service binary and its Containerfile, the computation
// behind each image's "<suite>-<12 hex>" tag.
func BenchmarkInputDigest(b *testing.B) {
	const size = 45 << 20
	content := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{45}).Read(content)
	binary := filepath.Join(b.TempDir(), "aianalysis")
	if err := os.WriteFile(binary, content, 0o755); err != nil {
		b.Fatal(err)
	}
	containerfile := []byte("FROM scratch\nCOPY aianalysis /aianalysis\nENTRYPOINT [\"/aianalysis\"]\n")
	b.SetBytes(size + int64(len(containerfile)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := inputDigest(binary, containerfile); err != nil {
			b.Fatal(err)
		}
	}
}
