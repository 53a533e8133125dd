//go:build client && !server

package main

import (
	"os"

	"chat/internal/client"
)

func main() { os.Exit(client.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
