package secretsink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// streamSecret is the JSON both the stream and the command receive.
type streamSecret struct {
	Role       string     `json:"role"`
	User       string     `json:"user"`
	Password   string     `json:"password"`
	ValidUntil *time.Time `json:"valid_until"`
	Host       string     `json:"host"`
	Port       string     `json:"port"`
	Database   string     `json:"dbname"`
}

func streamJSON(s Secret) ([]byte, error) {
	if err := checkSecret(s); err != nil {
		return nil, err
	}
	return marshal(streamSecret{s.Role, s.User, string(s.Password), s.ValidUntil, s.Host, s.Port, s.Database}, s.Password)
}

// NewJSON writes {"role","user","password","valid_until","host","port",
// "dbname"} to w as one line.
func NewJSON(w io.Writer) Sink { return &jsonSink{w: w} }

type jsonSink struct{ w io.Writer }

func (j *jsonSink) String() string { return "JSON on standard output" }

func (j *jsonSink) Deliver(ctx context.Context, s Secret) (*Delivery, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b, err := streamJSON(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j, err)
	}
	if _, err := j.w.Write(b); err != nil {
		// A write error names the stream, never the data.
		return nil, fmt.Errorf("%s: %w", j, err)
	}
	return &Delivery{Sink: j.String(), Written: sum(b)}, nil
}

// DefaultExecTimeout bounds a command given no timeout.
const DefaultExecTimeout = time.Minute

// maxStderr bounds what is kept of a command's stderr for its error.
const maxStderr = 8 << 10

// NewExec runs command with /bin/sh -c, the secret as JSON (as NewJSON)
// on its standard input and PGAEGIS_ROLE / PGAEGIS_USER (not secret) in
// its environment, which is ours without PGPASSWORD. Its standard output
// is discarded (it could echo the secret into a log). A non-zero exit or
// a timeout (0: DefaultExecTimeout) is an error that carries the start of
// the command's stderr with the password redacted; on a timeout its whole
// process group is killed.
func NewExec(command string, timeout time.Duration) Sink {
	if timeout <= 0 {
		timeout = DefaultExecTimeout
	}
	return &execSink{command: command, timeout: timeout}
}

type execSink struct {
	command string
	timeout time.Duration
}

func (e *execSink) String() string {
	return fmt.Sprintf("command %q (secret on standard input)", e.command)
}

func (e *execSink) Deliver(ctx context.Context, s Secret) (*Delivery, error) {
	b, err := streamJSON(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e, err)
	}
	if strings.TrimSpace(e.command) == "" {
		return nil, fmt.Errorf("%s: empty command", e)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", e.command)
	cmd.Env = execEnv(os.Environ(), s)
	cmd.Stdin = bytes.NewReader(b)
	stderr := &capped{max: maxStderr + len(s.Password)}
	cmd.Stderr = stderr
	cmd.Stdout = io.Discard
	// Its own process group, so a timeout kills what sh started too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// A grandchild holding stderr open must not hold us past the kill.
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	msg := redact(stderr.Bytes(), s.Password)
	switch {
	case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("%s: timed out after %s%s", e, e.timeout, msg)
	case err != nil:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%s: %s%s", e, ee.ProcessState, msg)
		}
		return nil, fmt.Errorf("%s: %w%s", e, err, msg)
	}
	return &Delivery{Sink: e.String(), Written: sum(b)}, nil
}

// execEnv is env without PGPASSWORD (the command must get the secret from
// its input, not inherit an admin password) and with PGAEGIS_ROLE and
// PGAEGIS_USER set.
func execEnv(env []string, s Secret) []string {
	out := make([]string, 0, len(env)+2)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PGPASSWORD", "PGAEGIS_ROLE", "PGAEGIS_USER":
			continue
		}
		out = append(out, kv)
	}
	return append(out, "PGAEGIS_ROLE="+s.Role, "PGAEGIS_USER="+s.User)
}

// redact formats a command's stderr for an error: the password (as given
// and as JSON escapes it) replaced, cut to maxStderr, on its own line.
func redact(stderr, password []byte) string {
	forms := [][]byte{password}
	if j, err := json.Marshal(string(password)); err == nil && len(j) > 2 && !bytes.Equal(j[1:len(j)-1], password) {
		forms = append(forms, j[1:len(j)-1])
	}
	out := stderr
	for _, f := range forms {
		out = bytes.ReplaceAll(out, f, []byte("[REDACTED]"))
	}
	// A cut password at the end of a capped capture cannot match whole;
	// drop any tail that could be its start.
	for n := len(password) - 1; n > 0; n-- {
		if bytes.HasSuffix(out, password[:n]) {
			out = out[:len(out)-n]
			break
		}
	}
	cut := ""
	if len(out) > maxStderr {
		out, cut = out[:maxStderr], " …"
	}
	s := strings.TrimSpace(strings.ToValidUTF8(string(out), "\uFFFD"))
	if s == "" {
		return ""
	}
	return ": stderr: " + s + cut
}

// capped keeps the first max bytes written and drops the rest.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}

func (c *capped) Bytes() []byte { return c.buf.Bytes() }
