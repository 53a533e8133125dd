//go:build !server && !client && !bench

package main

import (
	"fmt"
	"os"
)

// Without a tag there is nothing to run: say which tags select a program.
func main() {
	fmt.Fprintln(os.Stderr, "build with a tag: go run -tags server . (the chat server) or go run -tags client . (the client)")
	os.Exit(2)
}
