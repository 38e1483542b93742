// Command covered is a tiny program for coverage tests: one branch taken, one not.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 5 {
		fmt.Println("many arguments")
		return
	}
	fmt.Println("few arguments")
}
