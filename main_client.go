//go:build client && !server

package main

import "os"

func main() { os.Exit(runClient(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
