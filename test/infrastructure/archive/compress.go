package archive

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Compress writes the images refs of the docker-archive at src to dst as a docker-archive whose
// layers are gzip-compressed (go-containerregistry's tarball writer); the image IDs (config
// digests) stay the same, the layer blobs and so the nodes' content store shrink as much as the
// layers compress.
func Compress(src, dst string, refs []string) error {
	images := map[name.Reference]v1.Image{}
	for _, ref := range refs {
		tag, err := name.NewTag(ref)
		if err != nil {
			return fmt.Errorf("compress %s: %w", ref, err)
		}
		img, err := tarball.ImageFromPath(src, &tag)
		if err != nil {
			return fmt.Errorf("compress %s from %s: %w", ref, src, err)
		}
		images[tag] = img
	}
	if err := tarball.MultiRefWriteToFile(dst, images); err != nil {
		return fmt.Errorf("compress %s into %s: %w", src, dst, err)
	}
	return nil
}
