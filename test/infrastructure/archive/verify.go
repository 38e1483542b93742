// Package archive verifies the docker-archives engines save (`podman save --format docker-archive
// -m`, `docker save`) and writes a suite's archive as a Layout: what save streams, verified as it
// is written into one file per blob, so that the load can release each blob on its own.
package archive

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/kindling-dev/kindling/test/infrastructure/imageref"
)

// ErrCorrupt is wrapped by every error that means the archive's content is broken.
var ErrCorrupt = errors.New("the archive is corrupt")

// Verified describes an archive that passed Verify.
type Verified struct {
	Path string
	Size int64
	// SHA256 is the hex digest of the whole file.
	SHA256 string
	// Images are the wanted references, in the order asked for, with their image IDs (every
	// tagged reference in the archive when none were asked for).
	Images []Image
	// Removed lists the stale archives and temporaries Write deleted before saving (Write only).
	Removed []File
}

// Image is one reference found in the archive. ID is "sha256:" + the digest of its config: the
// image ID of podman, of docker's legacy store and of the nodes' CRI. Manifest is the digest of
// its manifest when the archive is an OCI layout (docker's containerd store): that store's image ID.
type Image struct {
	Ref      string
	ID       string
	Manifest string
	Layers   []Layer
}

// Layer is one layer of an image as the archive holds it.
type Layer struct {
	Digest string // "sha256:" + the digest of the blob in the archive (what a content store keys it by)
	DiffID string // "sha256:" + the digest of the uncompressed tar (the config's rootfs.diff_ids)
	Size   int64  // bytes of the blob in the archive
}

// maxKept bounds the size of a JSON file Verify keeps in memory (manifest.json, image configs).
const maxKept = 4 << 20

type member struct {
	sha256 string // empty when the index was made without hashing
	size   int64
	offset int64 // where the file's bytes start in the archive
	// uncompressed is the digest of the gunzipped content for gzip files, else sha256.
	uncompressed string
	data         []byte
}

// manifestEntry is one image of a docker-archive's manifest.json.
type manifestEntry = tarball.Descriptor

// namedDigest is the sha256 a blob's file name says it has: docker 25+'s "blobs/sha256/<hex>",
// docker's legacy "<hex>.json" configs; false for names that say none.
func namedDigest(name string) (string, bool) {
	name = strings.TrimSuffix(strings.TrimPrefix(name, "blobs/sha256/"), ".json")
	if digest.NewDigestFromEncoded(digest.SHA256, name).Validate() != nil {
		return "", false
	}
	return name, true
}

// Verify reads the archive at path once, streaming, and checks that manifest.json parses, every
// wanted reference is tagged in it, every config exists and matches the digest its name encodes,
// and every layer exists and its uncompressed sha256 equals the config's rootfs.diff_ids entry.
// It understands podman's "<hex>.tar" layers, docker's legacy "<id>/layer.tar" (symlinked when
// shared) and docker 25+'s "blobs/sha256/<hex>". Errors about content wrap ErrCorrupt.
func Verify(path string, wantRefs []string) (Verified, error) {
	f, err := os.Open(path)
	if err != nil {
		return Verified{}, fmt.Errorf("verify archive: %w", err)
	}
	defer f.Close()
	v, err := VerifyStream(f, wantRefs)
	if err != nil {
		return Verified{}, fmt.Errorf("verify archive %s: %w", path, err)
	}
	v.Path = path
	return v, nil
}

// VerifyStream is Verify of an archive read from r to its end, as it is written (no Path).
func VerifyStream(r io.Reader, wantRefs []string) (Verified, error) {
	whole := sha256.New()
	counted := &countingWriter{w: whole}
	x, err := index(io.TeeReader(r, counted), true)
	if err != nil {
		return Verified{}, err
	}
	// The tar reader stops at the end-of-archive marker; hash the padding after it too.
	if _, err := io.Copy(counted, r); err != nil {
		return Verified{}, fmt.Errorf("read: %w", err)
	}
	images, err := check(x, wantRefs)
	if err != nil {
		return Verified{}, err
	}
	return Verified{Size: counted.n, SHA256: hex.EncodeToString(whole.Sum(nil)), Images: images}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// tarIndex is what one pass over an archive learns: each regular file (where its bytes are and,
// when hashed, its digests and its content if small JSON) and the links between names.
type tarIndex struct {
	members map[string]*member
	links   map[string]string
}

// index reads the tar stream to its end-of-archive marker. With hash, it hashes every regular
// file and keeps small JSON in memory; without, it keeps only manifest.json and index.json.
func index(r io.Reader, hash bool) (tarIndex, error) { return indexInto(r, hash, nil) }

// indexInto is index that also writes every regular file into blobs, as it hashes it.
func indexInto(r io.Reader, hash bool, blobs *blobWriter) (tarIndex, error) {
	x := tarIndex{members: map[string]*member{}, links: map[string]string{}}
	counted := &countingReader{r: r}
	tr := tar.NewReader(counted)
	last := "the first entry"
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return tarIndex{}, readError(err, "after "+last)
		}
		name := cleanName(header.Name)
		last = name
		switch header.Typeflag {
		case tar.TypeReg:
			offset := counted.n
			var m *member
			switch {
			case blobs != nil:
				m, err = blobs.write(tr, header.Size, keepInMemory(name, header.Size))
			case hash:
				m, err = hashMember(tr, header.Size, keepInMemory(name, header.Size), nil)
			case name == "manifest.json" || name == "index.json":
				m = &member{size: header.Size}
				m.data, err = io.ReadAll(io.LimitReader(tr, maxKept))
			default:
				m = &member{size: header.Size}
			}
			var stored *storeError
			if errors.As(err, &stored) {
				return tarIndex{}, err
			}
			if err != nil {
				return tarIndex{}, readError(err, "in "+name)
			}
			m.offset = offset
			x.members[name] = m
		case tar.TypeSymlink:
			target := header.Linkname
			if !strings.HasPrefix(target, "/") {
				target = path.Join(path.Dir(name), target)
			}
			x.links[name] = cleanName(target)
		case tar.TypeLink:
			x.links[name] = cleanName(header.Linkname)
		}
	}
	return x, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func readError(err error, where string) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated %s (unexpected end of file): %w; delete it and export again", where, ErrCorrupt)
	}
	return fmt.Errorf("read tar %s: %v: %w; delete it and export again", where, err, ErrCorrupt)
}

func cleanName(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func keepInMemory(name string, size int64) bool {
	if size > maxKept {
		return false
	}
	return strings.HasSuffix(name, ".json") || strings.HasPrefix(name, "blobs/") || !strings.Contains(name, ".")
}

// hashMember reads one file, hashing it and, when it is gzip-compressed, its decompressed stream.
// With to, it also writes the file there.
func hashMember(r io.Reader, size int64, keep bool, to io.Writer) (*member, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(2)
	isGzip := len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b
	isJSON := len(magic) > 0 && (magic[0] == '{' || magic[0] == '[')
	digest := sha256.New()
	var kept *limitedBuffer
	writers := []io.Writer{digest}
	if to != nil {
		writers = append(writers, to)
	}
	if keep && isJSON {
		kept = &limitedBuffer{max: maxKept}
		writers = append(writers, kept)
	}
	var inflated hash.Hash
	var inflateDone chan error
	var pipe *io.PipeWriter
	if isGzip {
		var pr *io.PipeReader
		pr, pipe = io.Pipe()
		inflated = sha256.New()
		inflateDone = make(chan error, 1)
		go func() {
			err := inflate(pr, inflated)
			// Keep reading so the writer never blocks on a broken gzip stream.
			_, _ = io.Copy(io.Discard, pr)
			inflateDone <- err
		}()
		writers = append(writers, pipe)
	}
	n, err := io.Copy(io.MultiWriter(writers...), br)
	if pipe != nil {
		_ = pipe.Close()
	}
	var inflateErr error
	if inflateDone != nil {
		inflateErr = <-inflateDone
	}
	if err != nil {
		return nil, err
	}
	if n != size {
		return nil, io.ErrUnexpectedEOF
	}
	m := &member{sha256: hex.EncodeToString(digest.Sum(nil)), size: n}
	m.uncompressed = m.sha256
	if isGzip {
		if inflateErr != nil {
			// Not a valid gzip stream after all: its digest can only match as stored.
			m.uncompressed = ""
		} else {
			m.uncompressed = hex.EncodeToString(inflated.Sum(nil))
		}
	}
	if kept != nil && !kept.overflow {
		m.data = kept.buf
	}
	return m, nil
}

func inflate(r io.Reader, w io.Writer) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, zr)
	return err
}

type limitedBuffer struct {
	max      int
	buf      []byte
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if len(b.buf)+len(p) > b.max {
		b.overflow = true
		b.buf = nil
	} else if !b.overflow {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

// resolve follows symbolic and hard links to the regular file they name.
func (x tarIndex) resolve(name string) (*member, string, bool) {
	name = cleanName(name)
	for range 16 {
		if m, ok := x.members[name]; ok {
			return m, name, true
		}
		target, ok := x.links[name]
		if !ok {
			return nil, name, false
		}
		name = target
	}
	return nil, name, false
}

func check(x tarIndex, wantRefs []string) ([]Image, error) {
	manifestFile, ok := x.members["manifest.json"]
	if !ok {
		return nil, fmt.Errorf("manifest.json is missing: %w; export again", ErrCorrupt)
	}
	if manifestFile.data == nil {
		return nil, fmt.Errorf("manifest.json is not JSON or larger than %d bytes: %w", maxKept, ErrCorrupt)
	}
	var entries []manifestEntry
	if err := json.Unmarshal(manifestFile.data, &entries); err != nil {
		return nil, fmt.Errorf("manifest.json does not parse (%v): %w", err, ErrCorrupt)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("manifest.json lists no images: %w", ErrCorrupt)
	}
	ids := make([]string, len(entries))
	layers := make([][]Layer, len(entries))
	for i, entry := range entries {
		id, ls, err := checkEntry(x, entry)
		if err != nil {
			return nil, err
		}
		ids[i], layers[i] = id, ls
	}
	manifests, err := checkIndex(x.members)
	if err != nil {
		return nil, err
	}
	if len(wantRefs) == 0 {
		var images []Image
		for i, entry := range entries {
			for _, tag := range entry.RepoTags {
				images = append(images, Image{Ref: tag, ID: ids[i], Manifest: manifests[ids[i]], Layers: layers[i]})
			}
		}
		return images, nil
	}
	images := make([]Image, 0, len(wantRefs))
	for _, want := range wantRefs {
		image, found := Image{}, false
		for i, entry := range entries {
			for _, tag := range entry.RepoTags {
				if imageref.Same(tag, want) {
					image, found = Image{Ref: want, ID: ids[i], Manifest: manifests[ids[i]], Layers: layers[i]}, true
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("image %s is not in the archive (tagged: %s): %w; export again with that image",
				want, strings.Join(allTags(entries), ", "), ErrCorrupt)
		}
		images = append(images, image)
	}
	return images, nil
}

func checkEntry(x tarIndex, entry manifestEntry) (string, []Layer, error) {
	label := strings.Join(entry.RepoTags, ", ")
	if label == "" {
		label = entry.Config
	}
	config, configName, ok := x.resolve(entry.Config)
	if !ok {
		return "", nil, fmt.Errorf("config %s of %s is missing: %w", entry.Config, label, ErrCorrupt)
	}
	if named, ok := namedDigest(configName); ok && named != config.sha256 {
		return "", nil, fmt.Errorf("config %s of %s has sha256 %s, not the digest its name says: %w",
			configName, label, config.sha256, ErrCorrupt)
	}
	if config.data == nil {
		return "", nil, fmt.Errorf("config %s of %s is not JSON or larger than %d bytes: %w", configName, label, maxKept, ErrCorrupt)
	}
	// Only the rootfs: a config's other fields (a "created" no time parses) are not the archive's
	// integrity.
	var parsed struct {
		RootFS ocispec.RootFS `json:"rootfs"`
	}
	if err := json.Unmarshal(config.data, &parsed); err != nil {
		return "", nil, fmt.Errorf("config %s of %s does not parse (%v): %w", configName, label, err, ErrCorrupt)
	}
	diffIDs := parsed.RootFS.DiffIDs
	if len(diffIDs) != len(entry.Layers) {
		return "", nil, fmt.Errorf("%s lists %d layers but its config %s has %d diff_ids: %w",
			label, len(entry.Layers), configName, len(diffIDs), ErrCorrupt)
	}
	layers := make([]Layer, len(entry.Layers))
	for i, layerName := range entry.Layers {
		layer, resolved, ok := x.resolve(layerName)
		if !ok {
			return "", nil, fmt.Errorf("layer %s of %s is missing: %w", layerName, label, ErrCorrupt)
		}
		if want := diffIDs[i].Encoded(); diffIDs[i].Algorithm() != digest.SHA256 || layer.uncompressed != want {
			return "", nil, fmt.Errorf("layer %s (%s) of %s has uncompressed sha256 %s, but the config's diff_id is %s: %w",
				layerName, resolved, label, layer.uncompressed, diffIDs[i], ErrCorrupt)
		}
		layers[i] = Layer{Digest: "sha256:" + layer.sha256, DiffID: string(diffIDs[i]), Size: layer.size}
	}
	return "sha256:" + config.sha256, layers, nil
}

// ociBlob is a manifest (config and layers) or an index (manifests) in an OCI layout: what of
// ocispec.Manifest and ocispec.Index the walk needs, read from either.
type ociBlob struct {
	Config    *ocispec.Descriptor  `json:"config"`
	Manifests []ocispec.Descriptor `json:"manifests"`
}

// checkIndex reads the OCI layout's index.json, when there is one (docker's containerd store
// writes it beside manifest.json): every manifest it points at, directly or through an image
// index, must be in the archive — containerd's import fails on a missing one ("content digest
// ... not found"). It returns the manifest digest of each config digest.
func checkIndex(members map[string]*member) (map[string]string, error) {
	index, ok := members["index.json"]
	if !ok {
		return nil, nil
	}
	var top ociBlob
	if index.data == nil || json.Unmarshal(index.data, &top) != nil {
		return nil, fmt.Errorf("index.json does not parse: %w", ErrCorrupt)
	}
	manifests := map[string]string{}
	var walk func(d ocispec.Descriptor, depth int) error
	walk = func(d ocispec.Descriptor, depth int) error {
		if d.Digest.Validate() != nil || d.Digest.Algorithm() != digest.SHA256 {
			return fmt.Errorf("index.json refers to %q, not a sha256 digest: %w", d.Digest, ErrCorrupt)
		}
		hexDigest := d.Digest.Encoded()
		blob, ok := members["blobs/sha256/"+hexDigest]
		if !ok {
			return fmt.Errorf("index.json refers to %s (%s), which is not in the archive: %w; save for one platform (docker save --platform)",
				d.Digest, d.MediaType, ErrCorrupt)
		}
		if blob.sha256 != hexDigest {
			return fmt.Errorf("blob %s has sha256 %s: %w", d.Digest, blob.sha256, ErrCorrupt)
		}
		var parsed ociBlob
		if blob.data == nil || json.Unmarshal(blob.data, &parsed) != nil {
			return fmt.Errorf("manifest %s does not parse: %w", d.Digest, ErrCorrupt)
		}
		if parsed.Config != nil {
			manifests[string(parsed.Config.Digest)] = string(d.Digest)
		}
		if depth < 4 {
			for _, child := range parsed.Manifests {
				if err := walk(child, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, d := range top.Manifests {
		if err := walk(d, 0); err != nil {
			return nil, err
		}
	}
	return manifests, nil
}

func allTags(entries []manifestEntry) []string {
	var tags []string
	for _, entry := range entries {
		tags = append(tags, entry.RepoTags...)
	}
	if len(tags) == 0 {
		return []string{"nothing"}
	}
	return tags
}
