// Package guc interprets setting values the way the server does (booleans
// with unique prefixes, integers with octal and hex forms, list settings)
// and knows the built-in defaults of the settings the rules read.
package guc

import (
	"strconv"
	"strings"
)

// ParseBool follows the server's parse_bool: true/false, yes/no, on/off,
// 1/0, and any unique prefix of the words, case-insensitively.
func ParseBool(v string) (bool, bool) {
	s := strings.ToLower(strings.TrimSpace(v))
	if s == "" {
		return false, false
	}
	switch {
	case strings.HasPrefix("true", s), strings.HasPrefix("yes", s):
		return true, true
	case strings.HasPrefix("false", s), strings.HasPrefix("no", s):
		return false, true
	case s == "on":
		return true, true
	case len(s) >= 2 && strings.HasPrefix("off", s):
		return false, true
	case s == "1":
		return true, true
	case s == "0":
		return false, true
	}
	return false, false
}

// ParseInt follows strtol with base 0, as the server reads integer
// settings: 0600 is octal, 0x1f hex. Units are not handled here.
func ParseInt(v string) (int64, bool) {
	s := strings.TrimSpace(v)
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil || strings.Contains(s, "_") { // strconv allows 1_000, strtol does not
		return 0, false
	}
	return n, true
}

// SplitList splits a comma-separated list setting (listen_addresses,
// shared_preload_libraries, ...), trimming blanks and double quotes.
func SplitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		p = strings.Trim(p, `"`)
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Default returns the built-in default of a setting for a major version
// (0: unknown, the newest defaults are assumed), for the settings the
// rules read when auditing files without a server.
func Default(name string, major int) (string, bool) {
	switch strings.ToLower(name) {
	case "password_encryption":
		if major > 0 && major < 14 {
			return "md5", true
		}
		return "scram-sha-256", true
	case "ssl_min_protocol_version":
		if major > 0 && major < 13 {
			return "TLSv1", true
		}
		return "TLSv1.2", true
	case "log_line_prefix":
		if major > 0 && major < 10 {
			return "", true
		}
		return "%m [%p] ", true
	case "log_connections":
		// A list of aspects from 18 (receipt, authentication, ...), empty by default.
		if major >= 18 || major == 0 {
			return "", true
		}
		return "off", true
	case "allow_alter_system":
		if major > 0 && major < 17 {
			return "", false
		}
		return "on", true
	}
	v, ok := defaults[strings.ToLower(name)]
	return v, ok
}

var defaults = map[string]string{
	"listen_addresses":               "localhost",
	"port":                           "5432",
	"unix_socket_directories":        "/var/run/postgresql",
	"unix_socket_permissions":        "0777",
	"unix_socket_group":              "",
	"ssl":                            "off",
	"ssl_ciphers":                    "HIGH:MEDIUM:+3DES:!aNULL",
	"ssl_cert_file":                  "server.crt",
	"ssl_key_file":                   "server.key",
	"ssl_ca_file":                    "",
	"ssl_crl_file":                   "",
	"log_disconnections":             "off",
	"log_statement":                  "none",
	"log_destination":                "stderr",
	"logging_collector":              "off",
	"log_directory":                  "log",
	"log_file_mode":                  "0600",
	"log_min_messages":               "warning",
	"log_min_error_statement":        "error",
	"shared_preload_libraries":       "",
	"debug_print_parse":              "off",
	"debug_print_rewritten":          "off",
	"debug_print_plan":               "off",
	"client_min_messages":            "notice",
	"authentication_timeout":         "1min",
	"superuser_reserved_connections": "3",
	"max_connections":                "100",
}

// Known lists the settings with a known default.
func Known() []string {
	out := []string{"password_encryption", "ssl_min_protocol_version", "log_line_prefix", "allow_alter_system", "log_connections"}
	for k := range defaults {
		out = append(out, k)
	}
	return out
}

// postmasterOnly lists settings that need a server restart to change, for
// names the catalogue does not have (removed before 13).
var postmasterOnly = map[string]bool{
	"listen_addresses": true, "port": true, "unix_socket_directories": true, "unix_socket_permissions": true,
	"unix_socket_group": true, "logging_collector": true, "shared_preload_libraries": true, "max_connections": true,
	"superuser_reserved_connections": true, "data_directory": true, "hba_file": true, "ident_file": true,
	"config_file": true, "shared_buffers": true, "wal_level": true, "archive_mode": true,
}

// Context returns how a change takes effect: "restart" or "reload". A
// live server's pg_settings.context wins; without one, the newest major's
// (ContextIn gives a given major's).
func Context(name, serverContext string) string {
	if serverContext == "" {
		if p, ok := Lookup(name, 0); ok {
			serverContext = p.Context
		} else if postmasterOnly[strings.ToLower(name)] {
			return "restart"
		}
	}
	switch serverContext {
	case "postmaster", "internal":
		return "restart"
	}
	return "reload"
}

// QuoteLiteral quotes a value as an SQL or configuration-file string.
func QuoteLiteral(v string) string {
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}
