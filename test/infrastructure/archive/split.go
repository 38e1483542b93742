package archive

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// Part is one image of an archive as an archive of its own, read from the original file.
type Part struct {
	RepoTags []string
	// Size is what the part's stream holds: its config and layers (shared ones included).
	Size int64
	// WriteTo writes the part as a docker-archive (manifest.json, config, layers) to w.
	WriteTo func(w io.Writer) error
}

type located struct {
	offset, size int64
}

// Split indexes an archive once (where each file's bytes are) and returns one Part per image of
// its manifest.json, in order. A Part reads only its own files, by offset, so importing image by
// image holds one image's blobs at a time in a node instead of all of them.
func Split(archivePath string) ([]Part, error) {
	f, err := os.Open(archivePath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	files := map[string]located{}
	links := map[string]string{}
	var manifestData []byte
	counted := &countingReader{r: f}
	tr := tar.NewReader(counted)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, readError(err, "while indexing")
		}
		name := cleanName(h.Name)
		switch h.Typeflag {
		case tar.TypeReg:
			files[name] = located{offset: counted.n, size: h.Size}
			if name == "manifest.json" {
				if manifestData, err = io.ReadAll(io.LimitReader(tr, maxKept)); err != nil {
					return nil, readError(err, "in manifest.json")
				}
			}
		case tar.TypeSymlink:
			target := h.Linkname
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(name), target)
			}
			links[name] = cleanName(target)
		case tar.TypeLink:
			links[name] = cleanName(h.Linkname)
		}
	}
	var entries []manifestEntry
	if err := json.Unmarshal(manifestData, &entries); err != nil || len(entries) == 0 {
		return nil, fmt.Errorf("split %s: manifest.json lists no images (%v): %w", archivePath, err, ErrCorrupt)
	}
	resolve := func(name string) (string, located, bool) {
		name = cleanName(name)
		for range 16 {
			if l, ok := files[name]; ok {
				return name, l, true
			}
			target, ok := links[name]
			if !ok {
				break
			}
			name = target
		}
		return name, located{}, false
	}
	var parts []Part
	for _, e := range entries {
		names := append([]string{e.Config}, e.Layers...)
		var size int64
		for _, n := range names {
			_, l, ok := resolve(n)
			if !ok {
				return nil, fmt.Errorf("split %s: %s of %v is missing: %w", archivePath, n, e.RepoTags, ErrCorrupt)
			}
			size += l.size
		}
		entry := e
		parts = append(parts, Part{RepoTags: e.RepoTags, Size: size, WriteTo: func(w io.Writer) error {
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
				_, l, _ := resolve(n)
				if err := tw.WriteHeader(&tar.Header{Name: cleanName(n), Mode: 0o644, Size: l.size}); err != nil {
					return err
				}
				if _, err := io.Copy(tw, io.NewSectionReader(src, l.offset, l.size)); err != nil {
					return err
				}
			}
			return tw.Close()
		}})
	}
	return parts, nil
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
