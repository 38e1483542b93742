package archive

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Part is one image of an archive as an archive of its own, read from the original file.
type Part struct {
	RepoTags []string
	// Size is what the part's stream holds: its config and layers (shared ones included).
	Size int64
	// WriteTo writes the part as a docker-archive (manifest.json, config, layers) to w.
	WriteTo func(w io.Writer) error
}

// Split indexes an archive once (where each file's bytes are) and returns one Part per image of
// its manifest.json, in order. A Part reads only its own files, by offset, so importing image by
// image holds one image's blobs at a time in a node instead of all of them.
func Split(archivePath string) ([]Part, error) {
	f, err := os.Open(archivePath)
	if err != nil {
		return nil, err
	}
	x, err := index(f, false)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("split %s: %w", archivePath, err)
	}
	var entries []manifestEntry
	if m := x.members["manifest.json"]; m != nil {
		err = json.Unmarshal(m.data, &entries)
	}
	if err != nil || len(entries) == 0 {
		return nil, fmt.Errorf("split %s: manifest.json lists no images (%v): %w", archivePath, err, ErrCorrupt)
	}
	var parts []Part
	for _, e := range entries {
		var size int64
		for _, n := range append([]string{e.Config}, e.Layers...) {
			m, _, ok := x.resolve(n)
			if !ok {
				return nil, fmt.Errorf("split %s: %s of %v is missing: %w", archivePath, n, e.RepoTags, ErrCorrupt)
			}
			size += m.size
		}
		entry := e
		parts = append(parts, Part{RepoTags: e.RepoTags, Size: size, WriteTo: func(w io.Writer) error {
			return writePart(w, archivePath, x, entry)
		}})
	}
	return parts, nil
}

// writePart writes one image of the archive at archivePath as a docker-archive of its own.
func writePart(w io.Writer, archivePath string, x tarIndex, entry manifestEntry) error {
	src, err := os.Open(archivePath)
	if err != nil {
		return err
	}
	defer src.Close()
	tw := tar.NewWriter(w)
	manifest, _ := json.Marshal([]manifestEntry{entry})
	if err := tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(manifest))}); err != nil {
		return err
	}
	if _, err := tw.Write(manifest); err != nil {
		return err
	}
	written := map[string]bool{}
	for _, n := range append([]string{entry.Config}, entry.Layers...) {
		if written[cleanName(n)] {
			continue
		}
		written[cleanName(n)] = true
		m, _, _ := x.resolve(n)
		if err := tw.WriteHeader(&tar.Header{Name: cleanName(n), Mode: 0o644, Size: m.size}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, io.NewSectionReader(src, m.offset, m.size)); err != nil {
			return err
		}
	}
	return tw.Close()
}
