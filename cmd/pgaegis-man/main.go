// Command pgaegis-man writes pgaegis's man pages (section 1), one per
// command, from the same command tree as the binary. It is a separate
// program so cobra/doc and its Markdown-to-roff dependencies stay out of
// pgaegis itself.
//
//	go run ./cmd/pgaegis-man -dir man/man1
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spf13/cobra/doc"

	"github.com/pgaegis/pgaegis/internal/cli"
	"github.com/pgaegis/pgaegis/internal/collect"
)

func main() {
	dir := flag.String("dir", "man/man1", "directory to write pgaegis*.1 into (created)")
	flag.Parse()
	if err := run(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "pgaegis-man: %v\n", err)
		os.Exit(2)
	}
}

func run(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	root := cli.Root()
	root.DisableAutoGenTag = true // reproducible pages: no generation date
	hdr := &doc.GenManHeader{Title: "PGAEGIS", Section: "1", Source: "pgaegis " + collect.Version, Manual: "pgaegis manual"}
	return doc.GenManTree(root, hdr, dir)
}
