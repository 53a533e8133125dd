package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// runServer is the server's main: flags and environment in, exit status out.
func runServer(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stdout)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "chat server: %v\n", err)
		return 1
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintf(stderr, "chat server: -log-level: %v\n", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the TLS certificate (a failed reload keeps the old
	// one); it never stops the server.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer func() { signal.Stop(hup); close(hup) }()
	srv, err := NewServer(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "chat server: %s\n", oneLine(err))
		return 1
	}
	if err := srv.Listen(); err != nil {
		fmt.Fprintf(stderr, "chat server: %s\n", oneLine(err))
		srv.Shutdown(context.Background())
		return 1
	}
	go func() {
		for range hup { // until the deferred close
			srv.ReloadCertificates() // it logs the outcome
		}
	}()
	web := "off"
	if a := srv.WebAddr(); a != nil {
		web = a.String()
	}
	log.Info("chat server listening", "addr", srv.Addr().String(), "web", web, "db", redactDBURL(cfg.DB), "redis", redactRedisURL(cfg.Redis), "node", cfg.Node, "admin", cfg.Admin, "pprof", cfg.Pprof)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case <-ctx.Done():
	case err := <-served:
		log.Error("serve", "err", err)
		srv.Shutdown(context.Background())
		return 1
	}
	stop() // a second signal kills at once
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	log.Info("stopped")
	return 0
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
