package deploy

import "testing"

// BenchmarkRender renders the repository's real manifests with the aianalysis suite's images.
func BenchmarkRender(b *testing.B) {
	const dir = "../../../manifests"
	images := []Image{
		{Service: "datastorage", Ref: "localhost/datastorage:aianalysis-0123456789ab", ID: "sha256:aaaa"},
		{Service: "holmesgpt-api", Ref: "localhost/holmesgpt-api:aianalysis-123456789abc", ID: "sha256:bbbb"},
		{Service: "aianalysis", Ref: "localhost/aianalysis:aianalysis-23456789abcd", ID: "sha256:cccc"},
	}
	docs, err := Render(dir, images, nil)
	if err != nil {
		b.Fatal(err)
	}
	if len(docs) == 0 {
		b.Fatal("no documents rendered")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(dir, images, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(docs)), "docs")
}
