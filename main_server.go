//go:build server

package main

import "os"

func main() { os.Exit(runServer(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)) }
