//go:build bench && !server && !client

package main

import "os"

func main() { os.Exit(runLoadgen(os.Args[1:], os.Stdout, os.Stderr)) }
