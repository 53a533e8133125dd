//go:build bench && !server && !client

package main

import (
	"os"

	"chat/internal/loadgen"
)

func main() { os.Exit(loadgen.Run(os.Args[1:], os.Stdout, os.Stderr)) }
