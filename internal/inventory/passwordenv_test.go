package inventory

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordEnvForm: password_env must be written as a variable's
// name is by convention; anything else may be a pasted password and is
// refused without being shown.
func TestPasswordEnvForm(t *testing.T) {
	isolate(t)
	for _, tc := range []struct {
		value string
		ok    bool
	}{
		{"PGPASSWORD_PROD", true},
		{"_PW", true},
		{"DB1_PW2", true},
		{"EDGE_{site}_PASSWORD", true}, // for: values may bring lower case
		{"Sup3rSecretX", false},        // a valid variable name, but a password
		{"db_password", false},
		{"hunter", false},
		{"{site}", false},
		{"{site}_{n}", false},
		{"EDGE_{nope}_PW", false}, // no such for: variable: "{" stays
		{"2FA_PW", false},         // not a variable name at all
		{"correct horse", false},
	} {
		t.Run(tc.value, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{"fleet.yaml": lines(
				"servers:",
				"  - name: edge-{site}",
				"    for: {site: [ams]}",
				"    conninfo: host=edge",
				"    password_env: "+`"`+tc.value+`"`)})
			inv, err := Load(filepath.Join(dir, "fleet.yaml"))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if got, want := inv.Servers[0].PasswordEnv, strings.ReplaceAll(tc.value, "{site}", "ams"); got != want {
					t.Errorf("password_env %q, want %q", got, want)
				}
				return
			}
			var list Errors
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
			if want := (Pos{File: filepath.Join(dir, "fleet.yaml"), Line: 5, Col: 19}); list[0].Pos != want || list[0].Msg != passwordEnvMsg {
				t.Errorf("got %v", list[0])
			}
			if strings.Contains(list[0].Msg, tc.value) {
				t.Errorf("the error shows the value: %v", err)
			}
		})
	}
}

// TestPasswordEnvUnset: an unset variable is an error naming the server
// and where password_env is written; the name itself only when it looks
// like a variable's (always so after Load).
func TestPasswordEnvUnset(t *testing.T) {
	isolate(t)
	const name = "PGAEGIS_INVENTORY_TEST_UNSET_PW"
	t.Setenv(name, "")
	dir := writeFiles(t, map[string]string{"fleet.yaml": lines(
		"servers:",
		"  - name: edge-{site}",
		"    for: {site: [ams]}",
		"    conninfo: host=edge",
		"    password_env: PGAEGIS_{site}_UNSET_PW",
		"  - name: db1",
		"    conninfo: host=db1",
		"    password_env: "+name)})
	p := filepath.Join(dir, "fleet.yaml")
	inv, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{
		"server edge-ams: password_env PGAEGIS_ams_UNSET_PW is not set (or empty) in pgaegis's environment (password_env at " + p + ":5:19)",
		"server db1: password_env " + name + " is not set (or empty) in pgaegis's environment (password_env at " + p + ":8:19)",
	} {
		if _, err := inv.Servers[i].ConnConfig(); err == nil || err.Error() != want {
			t.Errorf("got  %v\nwant %s", err, want)
		}
	}
	// A Server made without Load: a value that does not look like a
	// variable's name is not shown.
	for _, tc := range []struct {
		s    Server
		want string
	}{
		{Server{Name: "db2", Conninfo: "host=db2", PasswordEnv: "Sup3rSecretX", PasswordEnvPos: Pos{File: "f.yaml", Line: 3, Col: 19}},
			"server db2: the variable password_env names at f.yaml:3:19 (name not shown: it does not look like a variable's name) is not set (or empty) in pgaegis's environment"},
		{Server{Name: "db3", Conninfo: "host=db3", PasswordEnv: "Sup3rSecretX"},
			"server db3: the variable password_env names (name not shown: it does not look like a variable's name) is not set (or empty) in pgaegis's environment"},
		{Server{Name: "db4", Conninfo: "host=db4", PasswordEnv: name},
			"server db4: password_env " + name + " is not set (or empty) in pgaegis's environment"},
	} {
		if _, err := tc.s.ConnConfig(); err == nil || err.Error() != tc.want {
			t.Errorf("got  %v\nwant %s", err, tc.want)
		}
	}
	// Set, the connection says where the password came from, by name.
	t.Setenv(name, "x")
	c, err := inv.Servers[1].ConnConfig()
	if err != nil || c.PasswordFrom != "password_env "+name {
		t.Errorf("%v %v", c, err)
	}
}
