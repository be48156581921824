package rules

// seedTopics maps rules to the practice guides in shared/seeds that ask for
// the same thing (guide file number: topic). They make up the "seeds"
// profile: the checklist administrators follow by hand today.
var seedTopics = map[string][]string{
	"NET-01":               {"000: listen_addresses", "003: listen_addresses"},
	"NET-04":               {"000: unix socket permissions", "003: unix_socket_permissions"},
	"TLS-01":               {"000: TLS", "001: TLS", "002: TLS internally", "003: ssl"},
	"TLS-02":               {"001: ssl_min_protocol_version", "003: ssl_min_protocol_version"},
	"TLS-03":               {"003: ssl_ciphers"},
	"TLS-04":               {"000: server key file mode"},
	"AUTH-01":              {"001: no trust", "002: trust left on", "004: pg_hba per network"},
	"AUTH-02":              {"001: scram-sha-256", "004: scram-sha-256"},
	"AUTH-04":              {"000: unix sockets"},
	"AUTH-05":              {"000: hostssl", "001: hostssl"},
	"AUTH-06":              {"004: pg_hba per network"},
	"AUTH-07.final-reject": {"001: final reject"},
	"AUTH-08":              {"001: superuser"},
	"AUTH-11":              {"001: scram-sha-256"},
	"AUTH-11.verifiers":    {"001: scram-sha-256"},
	"PRIV-01":              {"001: superuser", "002: over-permissioned roles", "004: role management"},
	"PRIV-02":              {"002: over-permissioned roles"},
	"PRIV-09":              {"004: revoke PUBLIC"},
	"PRIV-12":              {"004: revoke PUBLIC"},
	"LOG-19":               {"000: connection logging", "001: audit logging", "004: monitoring failed logins"},
	"LOG-20":               {"000: connection logging"},
	"LOG-24":               {"000: statement logging", "001: audit logging"},
	"LOG-26":               {"001: pgaudit", "004: pgaudit"},
	"FS-05":                {"004: data directory permissions"},
}
