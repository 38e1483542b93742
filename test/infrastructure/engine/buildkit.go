package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"runtime"
)

// HostPlatform is the platform images are built, saved and imported for: this machine's, which
// is also the Kind nodes'.
var HostPlatform = "linux/" + runtime.GOARCH

// parseBuildCache reads `docker buildx du --format json`: one JSON object per record, sizes as
// docker prints them ("8.192kB").
func parseBuildCache(out []byte) ([]CacheRecord, error) {
	var records []CacheRecord
	decoder := json.NewDecoder(bytes.NewReader(out))
	for {
		var raw struct {
			ID          string          `json:"ID"`
			Size        json.RawMessage `json:"Size"`
			Type        string          `json:"Type"`
			Description string          `json:"Description"`
			Shared      bool            `json:"Shared"`
			Reclaimable bool            `json:"Reclaimable"`
			InUse       bool            `json:"InUse"`
		}
		err := decoder.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return records, nil
		}
		if err != nil {
			return nil, err
		}
		size, err := jsonSize(raw.Size)
		if err != nil {
			return nil, fmt.Errorf("record %s: %w", raw.ID, err)
		}
		records = append(records, CacheRecord{ID: raw.ID, Size: size, Type: raw.Type, Description: raw.Description,
			Shared: raw.Shared, Reclaimable: raw.Reclaimable, InUse: raw.InUse})
	}
}

// cacheID matches BuildKit's record IDs (base 36): nothing a regular expression could misread.
var cacheID = regexp.MustCompile(`^[a-z0-9]+$`)
