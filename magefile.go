//go:build ignore

// Zero-install entry point: `go run magefile.go <target>` runs the targets in magefiles/ without a
// mage binary. `go run magefile.go -l` lists them.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
