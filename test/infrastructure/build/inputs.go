package build

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ContextFiles lists the files, directories and symlinks of a build context that an engine sends
// to the build: everything under dir that dir/.dockerignore does not exclude, as slash-separated
// paths relative to dir, in lexical order.
func ContextFiles(dir string) ([]string, error) {
	pm, err := ignoreMatcher(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		excluded, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return fmt.Errorf("%s/.dockerignore: %w", dir, err)
		}
		if excluded {
			// A "!pattern" line can bring back files below an excluded directory.
			if d.IsDir() && !mayReinclude(pm, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("build context %s: %w", dir, err)
	}
	slices.Sort(files)
	return files, nil
}

// mayReinclude reports whether an exclusion pattern ("!pattern") could match below dir: its
// literal part (up to the first wildcard) and dir lie on one path.
func mayReinclude(pm *patternmatcher.PatternMatcher, dir string) bool {
	if !pm.Exclusions() {
		return false
	}
	dir += "/"
	for _, p := range pm.Patterns() {
		if !p.Exclusion() {
			continue
		}
		literal := p.String()
		if i := strings.IndexAny(literal, `*?[\`); i >= 0 {
			literal = literal[:i]
		}
		if strings.HasPrefix(dir, literal) || strings.HasPrefix(literal, dir) {
			return true
		}
	}
	return false
}

func ignoreMatcher(dir string) (*patternmatcher.PatternMatcher, error) {
	var patterns []string
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		defer f.Close()
		if patterns, err = ignorefile.ReadAll(f); err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("%s/.dockerignore: %w", dir, err)
	}
	return pm, nil
}

// ContextDigest hashes every file ContextFiles lists: path, type and permission bits, and the
// content (a symlink's target), each length-prefixed so that no two contexts collide.
func ContextDigest(dir string) (string, error) {
	h := sha256.New()
	if err := hashContext(h, dir); err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

func hashContext(h hash.Hash, dir string) error {
	files, err := ContextFiles(dir)
	if err != nil {
		return err
	}
	for _, rel := range files {
		path := filepath.Join(dir, filepath.FromSlash(rel))
		info, err := os.Lstat(path)
		if err != nil {
			return fmt.Errorf("build context %s: %w", dir, err)
		}
		writeField(h, []byte(rel))
		_ = binary.Write(h, binary.BigEndian, uint32(info.Mode()&(fs.ModeType|fs.ModePerm)))
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return fmt.Errorf("build context %s: %w", dir, err)
			}
			writeField(h, []byte(target))
		case info.Mode().IsRegular():
			if err := writeFile(h, path, info.Size()); err != nil {
				return fmt.Errorf("build context %s: %w", dir, err)
			}
		}
	}
	return nil
}

func writeField(h hash.Hash, b []byte) {
	_ = binary.Write(h, binary.BigEndian, uint64(len(b)))
	h.Write(b)
}

func writeFile(h hash.Hash, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_ = binary.Write(h, binary.BigEndian, uint64(size))
	n, err := io.Copy(h, f)
	if err == nil && n != size {
		err = fmt.Errorf("%s changed while it was hashed", path)
	}
	return err
}

// dockerfileDigest hashes a Dockerfile build's inputs: the Dockerfile, the target, the resolved
// build args and the context's digest (ContextDigest).
func dockerfileDigest(dockerfile []byte, target string, args map[string]string, context string) string {
	h := sha256.New()
	writeField(h, []byte("dockerfile"))
	writeField(h, dockerfile)
	writeField(h, []byte(target))
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		writeField(h, []byte(k+"="+args[k]))
	}
	writeField(h, []byte(context))
	return fmt.Sprintf("%x", h.Sum(nil))
}
