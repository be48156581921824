package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// startSandbox starts the throwaway server of `audit --sandbox`. First it
// reaps what earlier runs killed with SIGKILL left behind (their data
// directories, and a postmaster if one outlived them). While the sandbox
// exists, SIGTERM, SIGINT and SIGHUP stop it and remove its directory
// before pgaegis exits, so a terminated audit leaves nothing in the temp
// directory. The returned stop must be called (it is also safe to call
// after a signal did the work).
func startSandbox(ctx context.Context, env *Env, version string) (*localpg.Server, func(), error) {
	// Found before anything is started: a missing major is a usage
	// problem with a clear answer, not a half-made sandbox.
	bin, err := localpg.FindBinDir(version)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	pgv, err := localpg.BinVersion(bin)
	if err != nil {
		return nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	// Signals are caught from here on: one arriving while we reap or
	// start is handled as soon as the server exists (or failed to).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	for _, r := range localpg.ReapOrphans() {
		dir := textsafe.String(r.Dir)
		switch {
		case r.Err != nil:
			fmt.Fprintf(env.Stderr, "sandbox of an earlier run left in place: %s\n", textsafe.String(r.Err.Error()))
		case r.Stopped > 0:
			fmt.Fprintf(env.Stderr, "removed the sandbox an earlier run left behind (%s), after stopping its server (pid %d)\n", dir, r.Stopped)
		default:
			fmt.Fprintf(env.Stderr, "removed the sandbox an earlier run left behind (%s)\n", dir)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	started := make(chan *localpg.Server, 1)
	done := make(chan struct{})
	cleaned := make(chan struct{})
	go func() {
		defer close(cleaned)
		select {
		case sig := <-sigs:
			// Cancel what is running (initdb, the start, the audit's
			// queries); then stop the server even if the audit is still
			// busy, and exit: the process was asked to end.
			cancel()
			fmt.Fprintf(env.Stderr, "\n%v: stopping the sandbox server and removing its directory\n", sig)
			if srv := <-started; srv != nil {
				srv.Stop()
			}
			signal.Stop(sigs)
			os.Exit(ExitError)
		case <-done:
		}
	}()
	fmt.Fprintf(env.Stderr, "starting a throwaway PostgreSQL %s server (initdb into a temporary directory)…\n", pgv)
	srv, err := localpg.Start(ctx, localpg.Options{BinDir: bin})
	started <- srv // nil on failure: Start removed its own directory
	stop := func() {
		close(done)
		<-cleaned
		signal.Stop(sigs)
		cancel()
		if srv != nil {
			srv.Stop()
		}
	}
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("sandbox: %w", err)
	}
	return srv, stop, nil
}
