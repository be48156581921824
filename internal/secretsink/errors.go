package secretsink

import "errors"

var errNotBuilt = errors.New("secretsink: not built yet")
