package disk

import (
	"fmt"
	"slices"
	"strings"
	"time"

	units "github.com/docker/go-units"
)

var binaryAbbrs = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}

// HumanBytes formats n in binary units with go-units: "512 B", "1.2 GiB", "12.3 GiB", "300 MiB".
func HumanBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	if s := units.CustomSize("%.1f %s", float64(n), 1024, binaryAbbrs); len(strings.Fields(s)[0]) <= 4 {
		return s
	}
	s := units.CustomSize("%.0f %s", float64(n), 1024, binaryAbbrs)
	if number, unit, _ := strings.Cut(s, " "); number == "1024" { // rounded up into the next unit
		if i := slices.Index(binaryAbbrs, unit); i+1 < len(binaryAbbrs) {
			return "1.0 " + binaryAbbrs[i+1]
		}
	}
	return s
}

// HumanSize formats a byte count that may be negative (a difference) without a "+": "-300 MiB".
func HumanSize(n int64) string {
	if n < 0 {
		return HumanDelta(n)
	}
	return HumanBytes(uint64(n))
}

// HumanDelta formats a signed byte difference: "+1.2 GiB", "-300 MiB", "0 B".
func HumanDelta(d int64) string {
	switch {
	case d > 0:
		return "+" + HumanBytes(uint64(d))
	case d < 0:
		return "-" + HumanBytes(uint64(-(d+1))+1)
	default:
		return "0 B"
	}
}

// HumanDuration rounds d for a report: to the millisecond below a second, else to 100 ms.
func HumanDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
