package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

var sizeUnits = map[string]float64{
	"":    1,
	"b":   1,
	"k":   1e3,
	"kb":  1e3,
	"m":   1e6,
	"mb":  1e6,
	"g":   1e9,
	"gb":  1e9,
	"t":   1e12,
	"tb":  1e12,
	"p":   1e15,
	"pb":  1e15,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"pib": 1 << 50,
}

// ParseSize parses a size as the engines print it: "0B", "1.59MB", "1.59 MB", "345.6kB",
// "2GiB", a plain byte count, or docker's reclaimable form "348.1MB (100%)". Decimal units
// (kB, MB, GB) are powers of 1000 as in docker's and podman's output; KiB, MiB, ... powers of 1024.
func ParseSize(s string) (int64, error) {
	text := strings.TrimSpace(s)
	if i := strings.IndexByte(text, '('); i >= 0 {
		text = strings.TrimSpace(text[:i])
	}
	end := 0
	for end < len(text) && (text[end] >= '0' && text[end] <= '9' || text[end] == '.') {
		end++
	}
	if end == 0 {
		return 0, fmt.Errorf("parse size %q: no number", s)
	}
	number, err := strconv.ParseFloat(text[:end], 64)
	if err != nil {
		return 0, fmt.Errorf("parse size %q: %w", s, err)
	}
	unit := strings.ToLower(strings.TrimSpace(text[end:]))
	factor, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("parse size %q: unknown unit %q", s, unit)
	}
	return int64(math.Round(number * factor)), nil
}

// jsonSize decodes a size that an engine prints either as a JSON number (podman) or as a
// human-readable string (docker).
func jsonSize(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var number float64
	if err := json.Unmarshal(raw, &number); err == nil {
		return int64(number), nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		return 0, fmt.Errorf("size %s is neither a number nor a string", raw)
	}
	return ParseSize(text)
}

// reclaimedSpace returns the size in a "Total reclaimed space: X" line, 0 when there is none.
func reclaimedSpace(output string) (int64, error) {
	const marker = "Total reclaimed space:"
	for _, line := range strings.Split(output, "\n") {
		if _, after, ok := strings.Cut(line, marker); ok {
			return ParseSize(after)
		}
	}
	return 0, nil
}
