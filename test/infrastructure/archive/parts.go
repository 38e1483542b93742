package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A Part is one import of a layout image into a node: the image's first Layers layers, sending
// only the blobs of Send. The node has the layers below Send unpacked already, from an earlier
// part or an earlier image with the same layers below: containerd's unpack skips a layer whose
// snapshot exists without reading its blob, so the blob need not come. A part short of the whole
// image is a partial image of its own (PartialRef, a config listing only its layers), which
// keeps its snapshots until the whole image holds them; the load then removes it.
type Part struct {
	Image  LayoutImage
	Layers int
	Send   []Blob
}

// PartialRepo is the repository of partial images in a node.
const PartialRepo = "localhost/kindling-partial"

// Whole reports whether the part is the image itself.
func (p Part) Whole() bool { return p.Layers == len(p.Image.Layers) }

// Refs are the names the part is imported under.
func (p Part) Refs() []string {
	if p.Whole() {
		return p.Image.Refs
	}
	return []string{PartialRef(p.Image.DiffIDs[:p.Layers])}
}

// PartialRef names the partial image of these layers.
func PartialRef(diffIDs []digest.Digest) string {
	return PartialRepo + ":" + identity.ChainID(diffIDs).Encoded()[:20]
}

// Bytes are the layer bytes the part sends.
func (p Part) Bytes() int64 {
	var n int64
	for _, b := range p.Send {
		n += b.Size
	}
	return n
}

// MinPart is the least a part may carry: smaller layers go together, so a suite of small images
// is imported an image at a time, as before there were parts.
const MinPart = 64 << 20

// PartBytes is the most a part of the layout's images carries: its largest layer, or MinPart.
// A node holds at most that many blobs at once beside the snapshots they unpack into.
func (l Layout) PartBytes() int64 {
	most := int64(MinPart)
	for _, img := range l.Images {
		for _, b := range img.Layers {
			most = max(most, b.Size)
		}
	}
	return most
}

// Parts splits the import of img into parts of at most most layer bytes (a larger layer goes
// alone), leaving out the layers whose chain is in unpacked: the nodes hold them unpacked. The
// last part is the whole image.
func Parts(img LayoutImage, unpacked map[digest.Digest]bool, most int64) []Part {
	skip := img.held(unpacked)
	var parts []Part
	var send []Blob
	var bytes int64
	for i := skip; i < len(img.Layers); i++ {
		b := img.Layers[i]
		if len(send) > 0 && bytes+b.Size > most {
			parts = append(parts, Part{Image: img, Layers: i, Send: send})
			send, bytes = nil, 0
		}
		send = append(send, b)
		bytes += b.Size
	}
	return append(parts, Part{Image: img, Layers: len(img.Layers), Send: send})
}

// held is how many of img's first layers the nodes hold unpacked: up to the last whose chain is
// in unpacked (a snapshot keeps its parents).
func (img LayoutImage) held(unpacked map[digest.Digest]bool) int {
	n := 0
	for i, c := range img.Chains() {
		if unpacked[c] {
			n = i + 1
		}
	}
	return n
}

// Chains are the chain IDs of img's layers: what a node holds unpacked once it holds img.
func (img LayoutImage) Chains() []digest.Digest {
	return identity.ChainIDs(slices.Clone(img.DiffIDs)) // which writes into the slice it gets
}

// Needed are the blobs that images still need when the layout's other images are on the nodes:
// each one's config, and its layers above those the others hold unpacked.
func (l Layout) Needed(images []LayoutImage) map[digest.Digest]Blob {
	rest := map[string]bool{}
	for _, img := range images {
		rest[img.ID] = true
	}
	unpacked := map[digest.Digest]bool{}
	for _, img := range l.Images {
		if !rest[img.ID] {
			for _, c := range img.Chains() {
				unpacked[c] = true
			}
		}
	}
	out := map[digest.Digest]Blob{}
	for _, img := range images {
		out[img.Config.Digest] = img.Config
		for _, b := range img.Layers[img.held(unpacked):] {
			out[b.Digest] = b
		}
	}
	return out
}

// WritePart writes p as an OCI archive (oci-layout, index.json, its config, manifest and the blobs
// of Send) to w, checking each blob against its digest as it reads it, as WriteImage does. The
// manifest describes every layer of the part; containerd's import stores the blobs it gets and
// its unpack skips the layers the node holds unpacked.
func (l Layout) WritePart(w io.Writer, p Part) error {
	config, err := l.readConfig(p.Image)
	if err != nil {
		return err
	}
	var platform struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
		Variant      string `json:"variant,omitempty"`
	}
	if err := json.Unmarshal(config, &platform); err != nil {
		return fmt.Errorf("archive %s: config of %v: %v: %w", l.Dir, p.Image.Refs, err, ErrCorrupt)
	}
	if !p.Whole() {
		if config, err = partialConfig(config, p.Image.DiffIDs[:p.Layers]); err != nil {
			return fmt.Errorf("archive %s: config of %v: %v: %w", l.Dir, p.Image.Refs, err, ErrCorrupt)
		}
	}
	manifest := struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        ocispec.Descriptor   `json:"config"`
		Layers        []ocispec.Descriptor `json:"layers"`
	}{
		SchemaVersion: 2,
		MediaType:     mediaTypeDockerManifest,
		Config:        ocispec.Descriptor{MediaType: mediaTypeDockerConfig, Digest: digest.FromBytes(config), Size: int64(len(config))},
	}
	for i, b := range p.Image.Layers[:p.Layers] {
		mt := mediaTypeDockerLayerGzip // containerd detects the compression as it unpacks
		if b.Digest == p.Image.DiffIDs[i] {
			mt = mediaTypeDockerLayer
		}
		manifest.Layers = append(manifest.Layers, ocispec.Descriptor{MediaType: mt, Digest: b.Digest, Size: b.Size})
	}
	mbytes, _ := json.Marshal(manifest)
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	for _, ref := range p.Refs() {
		named, err := reference.ParseDockerRef(ref)
		if err != nil {
			return fmt.Errorf("archive %s: image name %q: %v: %w", l.Dir, ref, err, ErrCorrupt)
		}
		tag := ""
		if t, ok := named.(reference.Tagged); ok {
			tag = t.Tag()
		}
		index.Manifests = append(index.Manifests, ocispec.Descriptor{
			MediaType: mediaTypeDockerManifest, Digest: digest.FromBytes(mbytes), Size: int64(len(mbytes)),
			Platform:    &ocispec.Platform{OS: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant},
			Annotations: map[string]string{"io.containerd.image.name": named.String(), ocispec.AnnotationRefName: tag},
		})
	}
	ibytes, _ := json.Marshal(index)
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})

	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	blobName := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	if err := add(ocispec.ImageLayoutFile, layout); err != nil {
		return err
	}
	if err := add(blobName(manifest.Config.Digest), config); err != nil {
		return err
	}
	if err := add(blobName(digest.FromBytes(mbytes)), mbytes); err != nil {
		return err
	}
	written := map[digest.Digest]bool{}
	for _, b := range p.Send {
		if written[b.Digest] {
			continue
		}
		written[b.Digest] = true
		if err := tw.WriteHeader(&tar.Header{Name: blobName(b.Digest), Mode: 0o644, Size: b.Size}); err != nil {
			return err
		}
		if err := l.copyBlob(tw, b); err != nil {
			return err
		}
	}
	if err := add(ocispec.ImageIndexFile, ibytes); err != nil {
		return err
	}
	return tw.Close()
}

const (
	mediaTypeDockerManifest  = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerConfig    = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer     = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// readConfig reads the image's config, checked against its digest.
func (l Layout) readConfig(img LayoutImage) ([]byte, error) {
	data, err := os.ReadFile(l.blobPath(img.Config))
	if err != nil {
		return nil, fmt.Errorf("archive %s: config %s of %v is missing (%v): %w", l.Dir, img.Config.Digest, img.Refs, err, ErrCorrupt)
	}
	if d := digest.FromBytes(data); d != img.Config.Digest {
		return nil, fmt.Errorf("archive %s: config %s of %v changed on disk since it was exported (now %s): %w", l.Dir, img.Config.Digest, img.Refs, d, ErrCorrupt)
	}
	return data, nil
}

// partialConfig is config with only diffIDs as its layers.
func partialConfig(config []byte, diffIDs []digest.Digest) ([]byte, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return nil, err
	}
	rootfs, err := json.Marshal(ocispec.RootFS{Type: "layers", DiffIDs: diffIDs})
	if err != nil {
		return nil, err
	}
	fields["rootfs"] = rootfs
	delete(fields, "history") // it describes the whole image's layers
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(fields); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(out.Bytes()), nil
}
