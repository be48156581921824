package fail2ban

import (
	"fmt"
	"strconv"
	"strings"
)

// SettingNames are the settings Build reads.
var SettingNames = []string{"log_line_prefix", "log_destination", "logging_collector", "log_directory", "log_filename",
	"data_directory", "port", "lc_messages", "log_timezone", "cluster_name", "server_version_num", "syslog_ident"}

// FromMap reads the settings from name → value (pg_settings.setting, or
// postgresql.conf's values); missing names keep PostgreSQL's defaults.
func FromMap(m map[string]string) (Settings, error) {
	s := Settings{LogLinePrefix: "%m [%p] ", LogDestination: "stderr", LogDirectory: "log",
		LogFilename: "postgresql-%Y-%m-%d_%H%M%S.log", Port: 5432, LogTimezone: "GMT"}
	if v, ok := m["log_line_prefix"]; ok {
		s.LogLinePrefix = v
	}
	str := map[string]*string{"log_destination": &s.LogDestination, "log_directory": &s.LogDirectory, "log_filename": &s.LogFilename,
		"data_directory": &s.DataDirectory, "lc_messages": &s.LcMessages, "log_timezone": &s.LogTimezone, "cluster_name": &s.ClusterName, "syslog_ident": &s.SyslogIdent}
	for k, p := range str {
		if v, ok := m[k]; ok && v != "" {
			*p = v
		}
	}
	if v, ok := m["logging_collector"]; ok {
		switch strings.ToLower(v) {
		case "on", "true", "yes", "1", "t", "y":
			s.LoggingCollector = true
		case "off", "false", "no", "0", "f", "n":
		default:
			return s, fmt.Errorf("logging_collector = %q is not a boolean", v)
		}
	}
	if v, ok := m["port"]; ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65535 {
			return s, fmt.Errorf("port = %q is not a port number", v)
		}
		s.Port = n
	}
	if v, ok := m["server_version_num"]; ok && v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			s.Major = n / 10000
		}
	}
	return s, nil
}
