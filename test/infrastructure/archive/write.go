package archive

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// File is an archive (or a leftover temporary) on disk.
type File struct {
	Path string
	Size int64
}

// DirEnv overrides DefaultDir.
const DirEnv = "E2E_ARCHIVE_DIR"

var safeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// removeStale removes the suite's archives, layouts and temporaries in dir.
func removeStale(dir, suite string) ([]File, error) {
	var stale []string
	for _, pattern := range []string{suite + "-*", "." + suite + "-*.tmp"} {
		matches, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return nil, fmt.Errorf("find stale archives: %w", err)
		}
		stale = append(stale, matches...)
	}
	var removed []File
	for _, name := range stale {
		info, err := os.Lstat(name)
		if err != nil || !(info.IsDir() || strings.HasSuffix(name, ".tar") || strings.HasSuffix(name, ".tmp")) {
			continue
		}
		size := sizeOf(name, info)
		if err := os.RemoveAll(name); err != nil {
			return removed, fmt.Errorf("remove stale archive %s: %w; delete it by hand", name, err)
		}
		removed = append(removed, File{Path: name, Size: size})
	}
	return removed, nil
}

func freshTemporary(dir, suite, runID string) (string, error) {
	for range 100 {
		random := make([]byte, 6)
		if _, err := rand.Read(random); err != nil {
			return "", err
		}
		name := filepath.Join(dir, fmt.Sprintf(".%s-%s-%s.tmp", suite, runID, hex.EncodeToString(random)))
		if _, err := os.Lstat(name); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("no free temporary file name in %s", dir)
}

// DefaultDir returns $E2E_ARCHIVE_DIR, or <user cache dir>/kindling/archives (falling back to
// <temp dir>/kindling-archives without a usable cache dir), creating it with mode 0700.
func DefaultDir() (string, error) {
	if dir := os.Getenv(DirEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("archive directory %s=%s: %w; point it at a writable directory", DirEnv, dir, err)
		}
		return dir, nil
	}
	if cache, err := os.UserCacheDir(); err == nil {
		dir := filepath.Join(cache, "kindling", "archives")
		if err := os.MkdirAll(dir, 0o700); err == nil {
			return dir, nil
		}
	}
	dir := filepath.Join(os.TempDir(), "kindling-archives")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("archive directory %s: %w; set %s to a writable directory", dir, err, DirEnv)
	}
	return dir, nil
}

// sizeOf is a file's size, or what a directory's files hold.
func sizeOf(path string, info fs.FileInfo) int64 {
	if !info.IsDir() {
		return info.Size()
	}
	var n int64
	filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// List returns the archives (*.tar files and layout directories) and leftover temporaries
// (.*.tmp) in dir, sorted by path; a missing dir has none.
func List(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list archives: %w", err)
	}
	var files []File
	for _, entry := range entries {
		name := entry.Name()
		temporary := strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp")
		layout := entry.IsDir() && !strings.HasPrefix(name, ".")
		if !(entry.Type().IsRegular() && strings.HasSuffix(name, ".tar")) && !temporary && !layout {
			continue
		}
		info, err := entry.Info()
		if err != nil {
			continue
		}
		path := filepath.Join(dir, name)
		files = append(files, File{Path: path, Size: sizeOf(path, info)})
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}
