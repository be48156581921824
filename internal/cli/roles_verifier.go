package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pgaegis/pgaegis/internal/scram"
)

// rolesVerifierCmd prints the SCRAM-SHA-256 verifier a policy file's
// `password:` takes, so a password set through a policy never reaches the
// server (or its log, or the file) as clear text.
func rolesVerifierCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verifier [--password-file F | --password-file -]",
		Short: "print the SCRAM-SHA-256 verifier of a password, for a policy file's password: (computed here, never sent)",
		Long: `Reads a password (from a file's first line, standard input with
--password-file -, or a prompt on the terminal without echo) and prints its
SCRAM-SHA-256 verifier (4096 iterations, a random salt), computed here with SASLprep as
PostgreSQL applies it. Put it in a policy file as the role's password:; the
server stores it as is and never sees the password.`,
		Example: `  pgaegis roles verifier                       # prompts twice, no echo
  pgaegis roles verifier --password-file app.pw  # the file's first line`,
		Args: noArgs,
	}
	file := cmd.Flags().String("password-file", "", "read the password from this file's first line ('-': standard input)")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, _ []string) (int, error) {
		var v string
		var err error
		if *file != "" {
			v, err = verifierFrom(env, "--password-file", *file)
		} else {
			v, err = promptVerifier(env)
		}
		if err != nil {
			return ExitError, err
		}
		fmt.Fprintln(env.Stdout, v)
		return ExitOK, nil
	})
	return cmd
}

// promptVerifier asks twice on the terminal, without echo.
func promptVerifier(env *Env) (string, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return "", usagef("no terminal to prompt on: give --password-file FILE (or - for standard input)")
	}
	defer tty.Close()
	read := func(prompt string) ([]byte, error) {
		fmt.Fprint(tty, prompt)
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return b, err
	}
	a, err := read("Password: ")
	if err != nil {
		return "", err
	}
	defer clear(a)
	b, err := read("Again: ")
	if err != nil {
		return "", err
	}
	defer clear(b)
	if string(a) != string(b) {
		return "", fmt.Errorf("the two passwords differ")
	}
	if len(a) == 0 {
		return "", usagef("an empty password")
	}
	env.secrets = append(env.secrets, string(a))
	return scram.Verifier(a, 0)
}
