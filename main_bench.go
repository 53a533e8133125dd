//go:build bench && !server && !client

package main

import (
	"chat/internal/loadgen"
	"os"
)

func main() { os.Exit(loadgen.Run(os.Args[1:], os.Stdout, os.Stderr)) }
