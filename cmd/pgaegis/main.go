// Command pgaegis audits and hardens PostgreSQL servers.
package main

import (
	"os"

	"github.com/pgaegis/pgaegis/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
