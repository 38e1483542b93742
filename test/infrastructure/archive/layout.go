package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	digest "github.com/opencontainers/go-digest"
)

// A Layout is a suite's images exported as one file per blob, named by its digest, beside
// images.json, which lists each image's config and layers. Unlike one tar it can shrink: once
// every node holds an image, the blobs that no image still to load needs are deleted (Release),
// so the host holds only what is still to load, and a resumed load finds the rest intact.
type Layout struct {
	Dir    string        `json:"-"`
	Images []LayoutImage `json:"images"`
}

// LayoutImage is one image of a Layout.
type LayoutImage struct {
	Refs []string `json:"refs"`
	// ID is the config's digest; Manifest the manifest digest an OCI archive gave it, if any.
	ID       string `json:"id"`
	Manifest string `json:"manifest,omitempty"`
	Config   Blob   `json:"config"`
	Layers   []Blob `json:"layers"`
	// DiffIDs are the layers' uncompressed digests, the config's rootfs.diff_ids.
	DiffIDs []digest.Digest `json:"diffIds"`
}

// Described is the image as Verify describes it, under each of its refs.
func (img LayoutImage) Described() []Image {
	var out []Image
	for _, ref := range img.Refs {
		d := Image{Ref: ref, ID: img.ID, Manifest: img.Manifest}
		for i, b := range img.Layers {
			d.Layers = append(d.Layers, Layer{Digest: string(b.Digest), DiffID: string(img.DiffIDs[i]), Size: b.Size})
		}
		out = append(out, d)
	}
	return out
}

// Blob is a file of the layout: blobs/sha256/<hex of Digest>.
type Blob struct {
	Digest digest.Digest `json:"digest"`
	Size   int64         `json:"size"`
}

const layoutIndex = "images.json"

// Blobs are the image's config and layers.
func (img LayoutImage) Blobs() []Blob { return append([]Blob{img.Config}, img.Layers...) }

func (l Layout) blobPath(b Blob) string {
	return filepath.Join(l.Dir, "blobs", string(b.Digest.Algorithm()), b.Digest.Encoded())
}

// WriteLayout saves refs through save into the layout <dir>/<suite>-<runID>, verifying as it
// writes: save's docker-archive is never on disk as a tar; each file of it is written as the blob
// its content digest names, and the result is checked as Verify checks a tar (configs, layers
// against their diff_ids, every ref present). Verified.SHA256 is the digest of images.json, which
// names every blob by its digest. Like Write, it first removes the suite's stale archives and
// layouts, and works in a temporary directory it renames into place.
func WriteLayout(ctx context.Context, dir, suite, runID string, refs []string, save func(ctx context.Context, w io.Writer) error) (Verified, error) {
	if !safeName.MatchString(suite) || !safeName.MatchString(runID) {
		return Verified{}, fmt.Errorf("write archive: suite %q and run ID %q must be non-empty and use only letters, digits, '.', '_' and '-'", suite, runID)
	}
	if len(refs) == 0 {
		return Verified{}, fmt.Errorf("write archive for suite %s: no images to save", suite)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Verified{}, fmt.Errorf("write archive: create directory: %w; set %s to a writable directory", err, DirEnv)
	}
	removed, err := removeStale(dir, suite)
	if err != nil {
		return Verified{Removed: removed}, err
	}
	tmp, err := freshTemporary(dir, suite, runID)
	if err != nil {
		return Verified{Removed: removed}, err
	}
	fail := func(err error) (Verified, error) {
		if rmErr := os.RemoveAll(tmp); rmErr != nil {
			err = fmt.Errorf("%w (also could not delete the temporary directory: %v)", err, rmErr)
		}
		return Verified{Removed: removed}, err
	}
	l := Layout{Dir: tmp}
	blobs := &blobWriter{dir: filepath.Join(tmp, "blobs", "sha256")}
	if err := os.MkdirAll(blobs.dir, 0o700); err != nil {
		return fail(err)
	}
	pr, pw := io.Pipe()
	saved := make(chan error, 1)
	go func() {
		err := save(ctx, pw)
		pw.CloseWithError(err)
		saved <- err
	}()
	x, err := indexInto(pr, true, blobs)
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // the padding after the end-of-archive marker
	}
	pr.CloseWithError(errors.Join(err, io.ErrClosedPipe))
	serr := <-saved
	var stored *storeError
	if errors.As(err, &stored) { // save then fails on the closed pipe: ours is the cause
		return fail(fmt.Errorf("write archive for suite %s into %s: %w; free space there or set %s to a directory with room", suite, dir, stored.err, DirEnv))
	}
	if serr != nil {
		return fail(fmt.Errorf("write archive for suite %s: save: %w", suite, serr))
	}
	if err != nil {
		return fail(fmt.Errorf("write archive for suite %s: the saved archive failed verification and was deleted: %w", suite, err))
	}
	if err := ctx.Err(); err != nil {
		return fail(fmt.Errorf("write archive for suite %s: interrupted: %w", suite, err))
	}
	images, err := check(x, refs)
	if err != nil {
		return fail(fmt.Errorf("write archive for suite %s: the saved archive failed verification and was deleted: %w", suite, err))
	}
	sizes := map[string]int64{}
	for _, m := range x.members {
		sizes[m.sha256] = m.size
	}
	for _, img := range images {
		if i := l.find(img.ID); i >= 0 {
			l.Images[i].Refs = append(l.Images[i].Refs, img.Ref)
			continue
		}
		li := LayoutImage{Refs: []string{img.Ref}, ID: img.ID, Manifest: img.Manifest,
			Config: Blob{Digest: digest.Digest(img.ID), Size: sizes[digest.Digest(img.ID).Encoded()]}}
		for _, layer := range img.Layers {
			li.Layers = append(li.Layers, Blob{Digest: digest.Digest(layer.Digest), Size: layer.Size})
			li.DiffIDs = append(li.DiffIDs, digest.Digest(layer.DiffID))
		}
		l.Images = append(l.Images, li)
	}
	// What the images do not name (manifest.json, index.json, legacy json and VERSION files)
	// goes: the layout is the images' blobs and its own index.
	if _, err := l.Release(l.Images); err != nil {
		return fail(err)
	}
	index, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := renameio.WriteFile(filepath.Join(tmp, layoutIndex), index, 0o600); err != nil {
		return fail(err)
	}
	final := filepath.Join(dir, suite+"-"+runID)
	if err := os.Rename(tmp, final); err != nil {
		return fail(fmt.Errorf("write archive for suite %s: %w", suite, err))
	}
	sum := sha256.Sum256(index)
	size := int64(len(index))
	for _, b := range l.blobs(l.Images) {
		size += b.Size
	}
	return Verified{Path: final, Size: size, SHA256: hex.EncodeToString(sum[:]), Images: images, Removed: removed}, nil
}

func (l Layout) find(id string) int {
	for i, img := range l.Images {
		if img.ID == id {
			return i
		}
	}
	return -1
}

// blobs are the distinct blobs of images.
func (l Layout) blobs(images []LayoutImage) map[digest.Digest]Blob {
	out := map[digest.Digest]Blob{}
	for _, img := range images {
		for _, b := range img.Blobs() {
			out[b.Digest] = b
		}
	}
	return out
}

// OpenLayout reads the layout at dir and checks its index has the digest wantSHA256 (hex; ""
// skips that check). It does not read the blobs: Check does.
func OpenLayout(dir, wantSHA256 string) (Layout, error) {
	data, err := os.ReadFile(filepath.Join(dir, layoutIndex))
	if err != nil {
		return Layout{}, fmt.Errorf("open archive %s: %w", dir, err)
	}
	if sum := sha256.Sum256(data); wantSHA256 != "" && hex.EncodeToString(sum[:]) != wantSHA256 {
		return Layout{}, fmt.Errorf("archive %s: %s changed since it was verified (sha256 %.12s, now %.12s): %w",
			dir, layoutIndex, wantSHA256, hex.EncodeToString(sum[:]), ErrCorrupt)
	}
	var l Layout
	if err := json.Unmarshal(data, &l); err != nil {
		return Layout{}, fmt.Errorf("archive %s: %s does not parse (%v): %w", dir, layoutIndex, err, ErrCorrupt)
	}
	for _, img := range l.Images {
		if len(img.DiffIDs) != len(img.Layers) {
			return Layout{}, fmt.Errorf("archive %s: %s lists %d layers and %d diff IDs for %v: %w", dir, layoutIndex, len(img.Layers), len(img.DiffIDs), img.Refs, ErrCorrupt)
		}
		for _, b := range img.Blobs() {
			if b.Digest.Validate() != nil || b.Digest.Algorithm() != digest.SHA256 {
				return Layout{}, fmt.Errorf("archive %s: %s names blob %q: %w", dir, layoutIndex, b.Digest, ErrCorrupt)
			}
		}
	}
	l.Dir = dir
	return l, nil
}

// IsLayout reports whether path is a layout (a directory) rather than a tar archive.
func IsLayout(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// Check rehashes the blobs images need (Needed): each must be there with its size and digest.
func (l Layout) Check(images []LayoutImage) error {
	for _, b := range l.Needed(images) {
		f, err := os.Open(l.blobPath(b))
		if err != nil {
			return fmt.Errorf("archive %s: blob %s is missing (%v): %w", l.Dir, b.Digest, err, ErrCorrupt)
		}
		d := digest.SHA256.Digester()
		n, err := io.Copy(d.Hash(), f)
		f.Close()
		if err != nil {
			return fmt.Errorf("archive %s: read blob %s: %w", l.Dir, b.Digest, err)
		}
		if n != b.Size || d.Digest() != b.Digest {
			return fmt.Errorf("archive %s: blob %s changed since it was verified (%d bytes, sha256 %s): %w", l.Dir, b.Digest, n, d.Digest(), ErrCorrupt)
		}
	}
	return nil
}

// Release deletes every blob that none of keep needs (Needed: the layout's other images are on
// the nodes), and any other file below blobs/, and returns the bytes freed. A load calls it once
// every node holds an image, with the images still to load.
func (l Layout) Release(keep []LayoutImage) (int64, error) {
	needed := map[string]bool{}
	for _, b := range l.Needed(keep) {
		needed[l.blobPath(b)] = true
	}
	var freed int64
	err := filepath.WalkDir(filepath.Join(l.Dir, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || needed[path] {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		freed += info.Size()
		return nil
	})
	if err != nil {
		return freed, fmt.Errorf("archive %s: release blobs: %w", l.Dir, err)
	}
	return freed, nil
}

// copyBlob copies a blob to w, holding its last byte back until the digest is checked: a blob
// that changed on disk fails before the reader has all of it, so it never imports a changed blob.
func (l Layout) copyBlob(w io.Writer, b Blob) error {
	f, err := os.Open(l.blobPath(b))
	if err != nil {
		return fmt.Errorf("archive %s: blob %s is missing (%v): %w", l.Dir, b.Digest, err, ErrCorrupt)
	}
	defer f.Close()
	d := digest.SHA256.Digester()
	src := io.TeeReader(f, d.Hash())
	head := max(b.Size-1, 0)
	if n, err := io.CopyN(w, src, head); err != nil {
		return fmt.Errorf("archive %s: blob %s is shorter than %d bytes (%d; %v): %w", l.Dir, b.Digest, b.Size, n, err, ErrCorrupt)
	}
	last, err := io.ReadAll(src)
	if err != nil {
		return fmt.Errorf("archive %s: read blob %s: %w", l.Dir, b.Digest, err)
	}
	if int64(len(last)) != b.Size-head || d.Digest() != b.Digest {
		return fmt.Errorf("archive %s: blob %s changed on disk since it was exported (now sha256 %s, %d bytes); it was not imported: %w",
			l.Dir, b.Digest, d.Digest(), head+int64(len(last)), ErrCorrupt)
	}
	_, err = w.Write(last)
	return err
}

// blobWriter writes the files of a tar stream as blobs named by their content's digest.
type blobWriter struct{ dir string }

// storeError is a failure to store a blob (a full disk), not a fault of the archive read.
type storeError struct{ err error }

func (e *storeError) Error() string { return "store a blob: " + e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// fileWriter keeps the file's first write error apart from the reader's.
type fileWriter struct {
	f   *os.File
	err error
}

func (w *fileWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

func (b *blobWriter) write(r io.Reader, size int64, keep bool) (*member, error) {
	f, err := os.CreateTemp(b.dir, ".incoming-*")
	if err != nil {
		return nil, &storeError{err}
	}
	fw := &fileWriter{f: f}
	m, err := hashMember(r, size, keep, fw)
	cerr := f.Close()
	switch {
	case fw.err != nil:
		err = &storeError{fw.err}
	case err == nil && cerr != nil:
		err = &storeError{cerr}
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	final := filepath.Join(b.dir, m.sha256)
	if _, err := os.Stat(final); err == nil { // the same content under another name
		return m, os.Remove(f.Name())
	}
	if err := os.Rename(f.Name(), final); err != nil {
		return nil, &storeError{err}
	}
	return m, nil
}
